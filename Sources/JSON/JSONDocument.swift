internal import CJansson

/// A parsed JSON text, owning the jansson tree it was read into.
///
/// Parsing rejects duplicate object keys (`JSON_REJECT_DUPLICATES`). The tree is read through
/// ``JSONValue`` views, which keep the document alive. It is built in an arena of its own
/// (``JSONArena``): no heap call per node, and the whole tree goes back at once.
public final class JSONDocument: @unchecked Sendable {
    // json_t *; immutable after init, in `arena` until deinit.
    let root: OpaquePointer
    private let arena: JSONArena

    /// Parses UTF-8 bytes. The corresponding C function is `json_loadb`.
    public init(bytes: UnsafeRawBufferPointer) throws(JSONError) {
        (root, arena) = try Self.parse(bytes)
    }

    public init(bytes: [UInt8]) throws(JSONError) {
        let parsed = bytes.withUnsafeBytes { raw in Result { () throws(JSONError) in try Self.parse(raw) } }
        (root, arena) = try parsed.get()
    }

    public convenience init(text: String) throws(JSONError) {
        try self.init(bytes: Array(text.utf8))
    }

    // Every node of the tree is in the arena (nothing takes a reference to one: the views are
    // read-only), so the arena goes back without jansson walking the tree to free each node.
    deinit { arena.recycle() }

    /// The top-level value.
    public var value: JSONValue { JSONValue(document: self, node: root) }

    private static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONError) -> (OpaquePointer, JSONArena) {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            throw .syntax(message: "empty input", line: 1, column: 1)
        }
        var error = json_error_t()
        let flags = CJansson_flags_reject_duplicates()
        let arena = JSONArena.take()
        let parsed = arena.withCurrent { json_loadb(base.assumingMemoryBound(to: CChar.self), bytes.count, flags, &error) }
        guard let tree = parsed else {
            arena.recycle()
            let text = withUnsafeBytes(of: &error.text) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            throw .syntax(message: text, line: Int(error.line), column: Int(error.column))
        }
        return (OpaquePointer(tree), arena)
    }
}
