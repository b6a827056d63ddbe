/// A request's path, decoded by the server itself rather than by MHD, which cuts a path at an
/// encoded NUL and turns `%2F` into a separator: a front proxy's path rule could then be passed
/// by spelling the path another way. Here a path is taken only when it has one reading.
public enum RequestPath {
    /// The decoded path of `raw` (the path part of the request target, as sent), or why it is
    /// refused.
    public static func decode(_ raw: UnsafeBufferPointer<UInt8>) -> Result<String, HTTPRequestProblem> {
        guard raw.first == UInt8(ascii: "/") else {
            return .failure(.badRequest("the request target must be a path starting with '/'"))
        }
        var escaped = false
        for byte in raw {
            if byte <= 0x20 || byte >= 0x7F || byte == UInt8(ascii: "#") {
                return .failure(.badRequest("the path has a byte that must be percent-encoded (0x\(hex(byte)))"))
            }
            if byte == UInt8(ascii: "%") { escaped = true }
        }
        // the common case: nothing to decode, one copy into a String
        guard escaped else { return .success(String(decoding: raw, as: UTF8.self)) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(raw.count)
        var i = 0
        while i < raw.count {
            let byte = raw[i]
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                i += 1
                continue
            }
            guard i + 2 < raw.count, let high = hexValue(raw[i + 1]), let low = hexValue(raw[i + 2]) else {
                return .failure(.badRequest("the path has a '%' not followed by two hex digits"))
            }
            let decoded = high << 4 | low
            if decoded == UInt8(ascii: "/") {
                return .failure(.badRequest("the path has an encoded '/' (%2F); send path separators as '/'"))
            }
            if decoded < 0x20 || decoded == 0x7F {
                return .failure(.badRequest("the path has an encoded control byte (%\(hex(decoded)))"))
            }
            bytes.append(decoded)
            i += 3
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return .failure(.badRequest("the decoded path is not UTF-8"))
        }
        return .success(text)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}
