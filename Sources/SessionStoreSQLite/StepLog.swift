import Foundation
import SessionStore

/// The session journal's write-ahead file: every change is appended here first, one copy per
/// group commit, and moved into the SQLite table later in large transactions (checkpoints). A
/// B-tree update per step cost about 10 µs of SQLite work and a 4 KB WAL frame; an append
/// costs a record's bytes.
///
/// Layout: a 16-byte header ("LSTMSTEP", version 1), then records of a 4-byte payload length,
/// an 8-byte FNV-1a checksum of the payload, and the payload (a put: kind 1 and a `Row`'s
/// fields; a step: kind 3, the id, step count, last use and state; a delete: kind 2 and the
/// id), then zeros to the end of the space allocated so far. A length of 0 ends the log.
///
/// The file is written through a shared mapping, in space `posix_fallocate` has reserved, so a
/// full disk is met by the allocation (a clean refusal), never by a store into the mapping;
/// and a write is a copy into the page cache, which outlives the process, instead of a system
/// call (`pwrite` cost ~6 µs a step here). A group's first length is stored last, so a kill
/// during the copy leaves the group invisible (a 0 where it begins). A record that fails its
/// checksum with nothing but zeros after it (a power cut in the middle of a write that was
/// never acknowledged) is dropped; one with more after it is damage, said at start-up.
struct StepLog {
    static let header: [UInt8] = Array("LSTMSTEP".utf8) + [1, 0, 0, 0, 0, 0, 0, 0]
    static let recordHead = 12
    /// The file grows by this much at a time (by a page at a time when the disk has less).
    static let chunk = 1 << 20

    let path: String
    let fd: Int32
    /// Bytes of whole records (and the header): where the next write goes.
    private(set) var size = 0
    /// The mapping of the file's first `mapped` bytes, all of them allocated.
    private var map: UnsafeMutableRawPointer?
    private var mapped = 0

    /// Makes a new, empty log at `path` (replacing any file there).
    init(creating path: String, sync: Bool) throws(StoreError) {
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError("cannot make the session store's step log '\(path)': \(String(cString: strerror(errno)))") }
        self.path = path
        self.fd = fd
        var head = Self.header
        guard append(&head, sync: sync) else {
            let why = String(cString: strerror(errno))
            close()
            throw StoreError("cannot write the session store's step log '\(path)': \(why)")
        }
        if sync { Self.syncDirectory(of: path) }
    }

    /// Whether the log holds no record.
    var isEmpty: Bool { size <= Self.header.count }

    func close() {
        if let map { munmap(map, mapped) }
        Foundation.close(fd)
    }

    /// Copies `bytes` (whole records, or the header) to the end; false (errno set) when the
    /// medium has no room for them, and then nothing was written.
    mutating func append(_ bytes: inout [UInt8], sync: Bool) -> Bool {
        guard reserve(bytes.count) else { return false }
        let at = map! + size
        bytes.withUnsafeBytes { b in
            let first = min(4, b.count)
            (at + first).copyMemory(from: b.baseAddress! + first, byteCount: b.count - first)
            at.copyMemory(from: b.baseAddress!, byteCount: first)  // the group appears here
        }
        if sync, fdatasync(fd) != 0 {
            let saved = errno
            at.storeBytes(of: 0, as: UInt32.self)  // not stored after all: invisible again
            errno = saved
            return false
        }
        size += bytes.count
        return true
    }

    /// Makes room for `n` more bytes: allocated on the medium and mapped.
    private mutating func reserve(_ n: Int) -> Bool {
        guard size + n > mapped else { return true }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var length = (size + n + Self.chunk - 1) / Self.chunk * Self.chunk
        var rc = posix_fallocate(fd, 0, off_t(length))
        if rc != 0 {  // a nearly full disk: just what this write needs
            length = (size + n + page - 1) / page * page
            rc = posix_fallocate(fd, 0, off_t(length))
        }
        guard rc == 0 else {
            errno = rc
            return false
        }
        let p = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let p, p != MAP_FAILED else { return false }
        if let map { munmap(map, mapped) }
        (map, mapped) = (p, length)
        return true
    }

    /// What a record says.
    enum Entry {
        case put(SessionJournal.Row)
        /// A step of a session put before: its new step count, last use and state.
        case step(id: String, step: Int, lastUsed: Double, state: [UInt8])
        case delete(String)

        var id: String {
            switch self {
            case let .put(row): return row.id
            case let .step(id, _, _, _), let .delete(id): return id
            }
        }
    }

    /// Appends one change's record to `buffer` (a step's comes made).
    static func encode(_ change: SessionJournal.Change, into buffer: inout [UInt8]) {
        switch change {
        case let .put(row):
            record(into: &buffer) { b in
                b.append(1)
                put(row.id, &b); put(row.model, &b); put(row.version, &b); put(row.fingerprint, &b)
                put(UInt64(bitPattern: Int64(row.step)), &b)
                put(row.created.bitPattern, &b)
                put(row.lastUsed.bitPattern, &b)
                put(row.layout, &b)
                put(UInt32(row.state.count), &b)
                b.append(contentsOf: row.state)
            }
        case let .step(_, bytes):
            buffer.append(contentsOf: bytes)
        case let .delete(id):
            record(into: &buffer) { b in
                b.append(2)
                put(id, &b)
            }
        case .cleared, .checkpoint, .close:
            break
        }
    }

    /// A step's record: the session's id, step count, last use and state.
    static func stepRecord(id: String, step: Int, lastUsed: Double, state: UnsafeRawBufferPointer) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(recordHead + 1 + 4 + id.utf8.count + 16 + 4 + state.count)
        record(into: &bytes) { b in
            b.append(3)
            put(id, &b)
            put(UInt64(bitPattern: Int64(step)), &b)
            put(lastUsed.bitPattern, &b)
            put(UInt32(state.count), &b)
            b.append(contentsOf: state)
        }
        return bytes
    }

    /// Appends a record: its head, then the payload `body` writes, then the head's length
    /// and checksum filled in.
    private static func record(into buffer: inout [UInt8], _ body: (inout [UInt8]) -> Void) {
        let start = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: recordHead))
        body(&buffer)
        let length = buffer.count - start - recordHead
        let sum = buffer.withUnsafeBufferPointer { checksum(UnsafeBufferPointer(rebasing: $0[(start + recordHead)...])) }
        buffer.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt32(length).littleEndian, toByteOffset: start, as: UInt32.self)
            raw.storeBytes(of: sum.littleEndian, toByteOffset: start + 4, as: UInt64.self)
        }
    }

    /// The entries in the log at `path`, in order (nil when there is no such file), and how
    /// many bytes of a write cut short at its end were dropped.
    static func read(_ path: String) throws(StoreError) -> (entries: [Entry], dropped: Int)? {
        guard let log = try Mapped(path) else { return nil }
        return (log.payloads.indices.map(log.entry), log.dropped)
    }

    /// A log file mapped read-only, its records checked: where their payloads lie, and how
    /// many bytes at its end were dropped. A checkpoint decodes one record at a time from it,
    /// so moving a log costs no memory near its size.
    final class Mapped {
        private let base: UnsafeMutableRawPointer?
        let bytes: UnsafeBufferPointer<UInt8>
        private(set) var payloads: [Range<Int>] = []
        private(set) var dropped = 0

        init?(_ path: String) throws(StoreError) {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                if errno == ENOENT { return nil }
                throw StoreError("cannot read the session store's step log '\(path)': \(String(cString: strerror(errno)))")
            }
            defer { Foundation.close(fd) }
            let count = Int(lseek(fd, 0, SEEK_END))
            if count > 0 {
                let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
                guard let p, p != MAP_FAILED else { throw StoreError("cannot read the session store's step log '\(path)': \(String(cString: strerror(errno)))") }
                base = p
                bytes = UnsafeBufferPointer(start: p.assumingMemoryBound(to: UInt8.self), count: count)
            } else {
                base = nil
                bytes = UnsafeBufferPointer(start: nil, count: 0)
            }
            try check(path)
        }

        deinit { if let base { munmap(base, bytes.count) } }

        func entry(_ k: Int) -> Entry { decode(bytes[payloads[k]])! }  // decoded once in `check`

        /// The session a record is of, and its kind (1 put, 2 delete, 3 step).
        func id(_ k: Int) -> (String, UInt8) {
            var r = Reader(bytes: bytes[payloads[k]])
            let kind = r.byte()!
            return (r.string()!, kind)
        }

        private func check(_ path: String) throws(StoreError) {
            let header = StepLog.header
            guard bytes.count >= header.count, header.elementsEqual(bytes[0..<header.count]) else {
                // a log made as the process died, before any record: its header cut short, or
                // its space allocated and the header's first four bytes (stored last) not yet in
                if bytes.count < header.count, header.starts(with: bytes) { dropped = bytes.count; return }
                let unfinished = bytes.count >= header.count && bytes[0..<4].allSatisfy { $0 == 0 }
                    && (bytes[4..<header.count].allSatisfy { $0 == 0 } || header[4...].elementsEqual(bytes[4..<header.count]))
                    && bytes[header.count...].allSatisfy { $0 == 0 }
                if unfinished { dropped = bytes[4..<header.count].contains { $0 != 0 } ? header.count - 4 : 0; return }
                throw StoreError("'\(path)' is not an lstm-serve step log (its header is wrong); move it aside to start without the steps it may hold")
            }
            let bytes = self.bytes
            var at = header.count
            func zeros(from k: Int) -> Bool { bytes[min(k, bytes.count)...].allSatisfy { $0 == 0 } }
            func nonzero(from k: Int) -> Int { bytes[k...].lastIndex { $0 != 0 }.map { $0 + 1 - k } ?? 0 }
            while at < bytes.count {
                guard bytes.count - at >= recordHead else { dropped = nonzero(from: at); return }
                let length = Int(UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24)
                if length == 0 {  // the end; past it the file holds zeros, or a write never finished
                    dropped = nonzero(from: at)
                    return
                }
                let end = at + recordHead + length
                guard end <= bytes.count else { dropped = nonzero(from: at); return }
                var sum: UInt64 = 0
                for k in 0..<8 { sum |= UInt64(bytes[at + 4 + k]) << (8 * k) }
                let payload = (at + recordHead)..<end
                let good = checksum(UnsafeBufferPointer(rebasing: bytes[payload])) == sum
                guard good, decode(bytes[payload]) != nil else {
                    if zeros(from: end) { dropped = nonzero(from: at); return }  // the last write, torn
                    throw StoreError("the session store's step log '\(path)' is damaged (a bad record at byte \(at) of \(bytes.count)); move it aside to start without the steps it holds")
                }
                payloads.append(payload)
                at = end
            }
        }
    }

    /// What a checkpoint writes for each session of a log: the record of its last word, and
    /// the put it builds on when that is a step of a session made in the same log.
    static func plan(_ log: Mapped) -> [String: (put: Int?, last: Int)] {
        var plan: [String: (put: Int?, last: Int)] = [:]
        for k in log.payloads.indices {
            let (id, kind) = log.id(k)
            switch kind {
            case 1: plan[id] = (k, k)
            case 2: plan[id] = (nil, k)
            default: plan[id] = (plan[id]?.put, k)
            }
        }
        return plan
    }

    private static func decode(_ payload: Slice<UnsafeBufferPointer<UInt8>>) -> Entry? {
        var r = Reader(bytes: payload)
        switch r.byte() {
        case 1:
            guard let id = r.string(), let model = r.string(), let version = r.string(), let fingerprint = r.string(),
                  let step = r.u64(), let created = r.u64(), let lastUsed = r.u64(), let layout = r.string(),
                  let count = r.u32(), let state = r.take(Int(count)), r.atEnd else { return nil }
            return .put(SessionJournal.Row(id: id, model: model, version: version, fingerprint: fingerprint, step: Int(Int64(bitPattern: step)),
                                           created: Double(bitPattern: created), lastUsed: Double(bitPattern: lastUsed), layout: layout, state: Array(state)))
        case 2:
            guard let id = r.string(), r.atEnd else { return nil }
            return .delete(id)
        case 3:
            guard let id = r.string(), let step = r.u64(), let lastUsed = r.u64(), let count = r.u32(), let state = r.take(Int(count)), r.atEnd else { return nil }
            return .step(id: id, step: Int(Int64(bitPattern: step)), lastUsed: Double(bitPattern: lastUsed), state: Array(state))
        default:
            return nil
        }
    }

    /// Each session's last word in `entries`, folded: a put with the steps after it, the
    /// steps alone (of a row stored before), or nil for a delete.
    static func fold(_ entries: [Entry], only wanted: Set<String>? = nil) -> [String: Folded] {
        var folded: [String: Folded] = [:]
        for entry in entries where wanted?.contains(entry.id) ?? true {
            switch entry {
            case let .put(row): folded[row.id] = .put(row)
            case .delete(let id): folded[id] = .delete
            case let .step(id, step, lastUsed, state):
                if case let .put(row)? = folded[id] {
                    folded[id] = .put(row.stepped(step: step, lastUsed: lastUsed, state: state))
                } else {
                    folded[id] = .step(step: step, lastUsed: lastUsed, state: state)
                }
            }
        }
        return folded
    }

    enum Folded {
        case put(SessionJournal.Row)
        case step(step: Int, lastUsed: Double, state: [UInt8])
        case delete
    }

    private struct Reader {
        let bytes: Slice<UnsafeBufferPointer<UInt8>>
        var at: Int
        init(bytes: Slice<UnsafeBufferPointer<UInt8>>) { (self.bytes, at) = (bytes, bytes.startIndex) }
        var atEnd: Bool { at == bytes.endIndex }
        mutating func take(_ n: Int) -> Slice<UnsafeBufferPointer<UInt8>>? {
            guard n >= 0, bytes.endIndex - at >= n else { return nil }
            defer { at += n }
            return bytes[at..<(at + n)]
        }
        mutating func byte() -> UInt8? { take(1)?.first }
        mutating func u32() -> UInt32? { take(4).map { $0.reversed().reduce(0) { $0 << 8 | UInt32($1) } } }
        mutating func u64() -> UInt64? { take(8).map { $0.reversed().reduce(0) { $0 << 8 | UInt64($1) } } }
        mutating func string() -> String? {
            guard let n = u32(), let s = take(Int(n)) else { return nil }
            return String(validating: s, as: UTF8.self)
        }
    }

    private static func put(_ s: String, _ buffer: inout [UInt8]) {
        put(UInt32(s.utf8.count), &buffer)
        buffer.append(contentsOf: s.utf8)
    }

    private static func put<T: FixedWidthInteger>(_ v: T, _ buffer: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { buffer.append(contentsOf: $0) }
    }

    /// FNV-1a over 8-byte words (then the last bytes one by one): a torn or damaged record
    /// fails it; it is no defence against someone forging one.
    static func checksum(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        let raw = UnsafeRawBufferPointer(bytes)
        let words = bytes.count / 8
        for k in 0..<words { h = (h ^ UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * k, as: UInt64.self))) &* 0x0000_0100_0000_01b3 }
        for k in (8 * words)..<bytes.count { h = (h ^ UInt64(bytes[k])) &* 0x0000_0100_0000_01b3 }
        return h
    }

    /// Makes a file's creation, removal or renaming in its directory durable.
    static func syncDirectory(of path: String) {
        let directory = (path as NSString).deletingLastPathComponent
        let fd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        Foundation.close(fd)
    }
}
