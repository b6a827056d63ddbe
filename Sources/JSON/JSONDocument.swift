internal import CJansson

/// A parsed JSON text, owning the jansson tree it was read into.
///
/// Parsing rejects duplicate object keys (`JSON_REJECT_DUPLICATES`). The tree is read through
/// ``JSONValue`` views, which keep the document alive.
public final class JSONDocument: @unchecked Sendable {
    // json_t *; immutable after init, freed in deinit.
    let root: OpaquePointer

    /// Parses UTF-8 bytes. The corresponding C function is `json_loadb`.
    public init(bytes: UnsafeRawBufferPointer) throws(JSONError) {
        root = try Self.parse(bytes)
    }

    public init(bytes: [UInt8]) throws(JSONError) {
        let parsed = bytes.withUnsafeBytes { raw in Result { () throws(JSONError) in try Self.parse(raw) } }
        root = try parsed.get()
    }

    public convenience init(text: String) throws(JSONError) {
        try self.init(bytes: Array(text.utf8))
    }

    deinit { CJansson_json_decref(UnsafeMutablePointer<json_t>(root)) }

    /// The top-level value.
    public var value: JSONValue { JSONValue(document: self, node: root) }

    private static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONError) -> OpaquePointer {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            throw .syntax(message: "empty input", line: 1, column: 1)
        }
        var error = json_error_t()
        let flags = CJansson_flags_reject_duplicates()
        guard let tree = json_loadb(base.assumingMemoryBound(to: CChar.self), bytes.count, flags, &error)
        else {
            let text = withUnsafeBytes(of: &error.text) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            throw .syntax(message: text, line: Int(error.line), column: Int(error.column))
        }
        return OpaquePointer(tree)
    }
}
