internal import CJansson
import Locking

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Memory for jansson trees that live no longer than one request.
///
/// jansson allocates each node, key and string on its own (about 130 `malloc`s and as many
/// `free`s to parse a week of weather). While an arena is current on a thread, jansson's
/// allocations there are carved from the arena's chunk instead, freeing them does nothing,
/// and the arena hands all of it back at once when it is rewound: a parsed request document
/// and the scratch of a dump then cost no heap call at all once the pool is warm.
///
/// jansson's allocator is process-wide (`json_set_alloc_funcs`), so every block it allocates
/// carries a 16-byte tag in front saying where it came from: `heap` blocks (trees that outlive
/// a request, like ``JSONTemplate``'s, built with no arena current) are `malloc`ed and `free`d
/// as before; `arena` blocks are left to their arena. The functions are installed before
/// jansson's first allocation (every path into jansson in this module goes through
/// ``JSONArena/installed`` first), so no untagged block is ever freed through them.
final class JSONArena: @unchecked Sendable {
    /// Raw state, reached from jansson's allocation callback without reference counting.
    struct State {
        var cursor: UnsafeMutableRawPointer
        var end: UnsafeMutableRawPointer
        /// Chunks taken when the first ran out, each starting with the previous one's address.
        var overflow: UnsafeMutableRawPointer?
        /// The size of the next overflow chunk: doubles, so a large body takes few of them.
        var nextSize: Int
    }

    private static let chunkSize = 16 * 1024
    private static let tagSize = 16
    private static let heapTag: UInt64 = 0x6865_6170_6865_6170  // any two constants will do
    private static let arenaTag: UInt64 = 0x6172_656E_6172_656E
    private static let idleLimit = 64

    private let state: UnsafeMutablePointer<State>
    private let first: UnsafeMutableRawPointer

    private init() {
        first = .allocate(byteCount: Self.chunkSize, alignment: 16)
        state = .allocate(capacity: 1)
        state.initialize(to: State(cursor: first, end: first + Self.chunkSize, overflow: nil, nextSize: 2 * Self.chunkSize))
    }

    deinit {
        rewind()
        state.deallocate()
        first.deallocate()
    }

    /// Forgets everything allocated: overflow chunks go back to the heap, the first is reused.
    private func rewind() {
        var chunk = state.pointee.overflow
        while let c = chunk {
            chunk = c.load(as: UnsafeMutableRawPointer?.self)
            free(c)
        }
        state.pointee = State(cursor: first, end: first + Self.chunkSize, overflow: nil, nextSize: 2 * Self.chunkSize)
    }

    // MARK: the pool

    private static let idle = Locked<[JSONArena]>([])

    /// An arena from the pool (or a new one); give it back with ``recycle()``.
    static func take() -> JSONArena {
        idle.withLock { $0.popLast() } ?? JSONArena()
    }

    /// Rewinds the arena and returns it to the pool (up to 64 wait there; more are freed).
    func recycle() {
        rewind()
        Self.idle.withLock { if $0.count < Self.idleLimit { $0.append(self) } }
    }

    /// `body`'s result with this arena current on the calling thread (the one before is
    /// current again afterwards). `body` must not suspend.
    func withCurrent<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        _ = Self.installed
        let previous = pthread_getspecific(Self.key)
        pthread_setspecific(Self.key, state)
        defer { pthread_setspecific(Self.key, previous) }
        return try body()
    }

    /// `body`'s result with no arena current: for jansson trees that outlive the request
    /// (a template's, and the strings set into it), whatever the caller has current.
    static func onHeap<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        _ = installed
        let previous = pthread_getspecific(key)
        guard previous != nil else { return try body() }
        pthread_setspecific(key, nil)
        defer { pthread_setspecific(key, previous) }
        return try body()
    }

    /// `body`'s result with a pooled arena current that is rewound afterwards: for jansson
    /// work whose every allocation is freed before `body` returns (a dump, a tree made and
    /// written at once).
    static func withScratch<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        let arena = take()
        defer { arena.recycle() }
        return try arena.withCurrent(body)
    }

    // MARK: jansson's allocation functions

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let result = pthread_key_create(&key, nil)
        precondition(result == 0, "pthread_key_create failed: \(result)")
        return key
    }()

    /// Installs the tagged allocator. The corresponding C function is `json_set_alloc_funcs`.
    static let installed: Void = {
        _ = key
        json_set_alloc_funcs(allocate, release)
    }()

    private static let allocate: json_malloc_t = { size in
        let need = (size + JSONArena.tagSize + 15) & ~15
        let block: UnsafeMutableRawPointer
        if let current = pthread_getspecific(JSONArena.key) {
            let state = current.assumingMemoryBound(to: State.self)
            if state.pointee.end - state.pointee.cursor >= need {
                block = state.pointee.cursor
                state.pointee.cursor += need
            } else {
                guard let grown = JSONArena.grow(state, need) else { return nil }
                block = grown
            }
            block.storeBytes(of: JSONArena.arenaTag, as: UInt64.self)
        } else {
            guard let heap = malloc(need) else { return nil }
            block = heap
            block.storeBytes(of: JSONArena.heapTag, as: UInt64.self)
        }
        return block + JSONArena.tagSize
    }

    private static let release: json_free_t = { pointer in
        guard let pointer else { return }
        let block = pointer - JSONArena.tagSize
        let tag = block.load(as: UInt64.self)
        assert(tag == JSONArena.heapTag || tag == JSONArena.arenaTag, "jansson freed a block it did not get from JSONArena")
        if tag == JSONArena.heapTag { free(block) }
    }

    /// A chunk for `need` bytes (twice the last one, or more if `need` is larger): linked in,
    /// made current.
    private static func grow(_ state: UnsafeMutablePointer<State>, _ need: Int) -> UnsafeMutableRawPointer? {
        let link = 16
        let size = max(state.pointee.nextSize, need + link)
        guard let chunk = malloc(size) else { return nil }
        state.pointee.nextSize = min(2 * state.pointee.nextSize, 4 << 20)
        chunk.storeBytes(of: state.pointee.overflow, as: UnsafeMutableRawPointer?.self)
        state.pointee.overflow = chunk
        state.pointee.cursor = chunk + link + need
        state.pointee.end = chunk + size
        return chunk + link
    }
}
