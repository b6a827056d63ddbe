internal import CJansson
import Locking

/// A jansson tree built once and written many times: the values at its slots (places named by
/// a path of object keys, or of decimal indexes into arrays) are set in place before each write, so an answer of a fixed shape
/// costs no tree building and no allocation but jansson's own while dumping. One user at a
/// time: take one from a ``JSONTemplate/Pool`` (which is what makes passing it between threads
/// safe, hence the unchecked Sendable).
public final class JSONTemplate: @unchecked Sendable {
    private let tree: UnsafeMutablePointer<json_t>
    private let slots: [UnsafeMutablePointer<json_t>]
    private let paths: [[String]]
    /// Why the next write must fail: the first slot given a non-finite number since the last
    /// write, or a value jansson could not take.
    private var failure: JSONError?

    /// `shape` with a placeholder of the right kind at each of `slots` (a number for
    /// `set(_:float:)`, an integer for `set(_:int:)`, a string for `set(_:string:)`). A path
    /// that is not in `shape` is `encodingFailed`.
    public init(_ shape: JSON, slots: [[String]]) throws(JSONError) {
        let tree = try JSONArena.onHeap { () throws(JSONError) in try shape.makeTree() }
        var nodes: [UnsafeMutablePointer<json_t>] = []
        for path in slots {
            var node = tree
            for key in path {
                let child = CJansson_json_typeof(node) == Int32(JSON_ARRAY.rawValue)
                    ? Int(key).flatMap { json_array_get(node, $0) } : key.withCString { json_object_get(node, $0) }
                guard let child else {
                    CJansson_json_decref(tree)
                    throw .encodingFailed
                }
                node = child
            }
            nodes.append(node)
        }
        self.tree = tree
        self.slots = nodes
        paths = slots
    }

    deinit { CJansson_json_decref(tree) }

    /// Sets a number slot to the shortest decimal that reads back as `value`. The
    /// corresponding C function is `json_real_set`.
    public func set(_ slot: Int, float value: Float) {
        guard value.isFinite else {
            if failure == nil { failure = .nonFinite(path: "$." + paths[slot].joined(separator: ".")) }
            return
        }
        check(json_real_set(slots[slot], JSON.shortestDouble(value)))
    }

    /// The corresponding C function is `json_integer_set`.
    public func set(_ slot: Int, int value: Int) { check(json_integer_set(slots[slot], json_int_t(value))) }

    /// The corresponding C function is `json_string_setn_nocheck` (a Swift String is valid UTF-8).
    public func set(_ slot: Int, string value: String) {
        var value = value
        // jansson copies the string into a new block that lives with the tree: on the heap
        let result = JSONArena.onHeap {
            value.withUTF8 { $0.withMemoryRebound(to: CChar.self) { json_string_setn_nocheck(slots[slot], $0.baseAddress, $0.count) } }
        }
        check(result)
    }

    /// jansson answers -1 for a slot of another kind or when it cannot allocate.
    private func check(_ result: Int32) {
        if result != 0, failure == nil { failure = .encodingFailed }
    }

    /// The tree as it stands, as UTF-8; fails (and forgets the failure) if a value set since
    /// the last write was not finite or not taken.
    public func serializedBytes() throws(JSONError) -> [UInt8] {
        if let failure {
            self.failure = nil
            throw failure
        }
        return try JSON.dump(tree)
    }

    /// Templates of one shape for concurrent writers: each call borrows one (made on demand,
    /// so there are at most as many as writers at once) and returns it afterwards.
    public final class Pool: Sendable {
        private let shape: JSON
        private let slots: [[String]]
        private let idle = Locked<[JSONTemplate]>([])

        public init(_ shape: JSON, slots: [[String]]) throws(JSONError) {
            _ = try JSONTemplate(shape, slots: slots)  // the shape and slots are checked once, here
            self.shape = shape
            self.slots = slots
        }

        /// `body`'s result with a template of its own; nil if none could be made (jansson out
        /// of memory: write the answer another way).
        public func withTemplate<T, E: Error>(_ body: (JSONTemplate) throws(E) -> T) throws(E) -> T? {
            guard let template = idle.withLock({ $0.popLast() }) ?? (try? JSONTemplate(shape, slots: slots)) else { return nil }
            defer { idle.withLock { $0.append(template) } }
            return try body(template)
        }
    }
}
