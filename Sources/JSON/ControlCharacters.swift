/// Text from outside (a request, a file, jansson quoting its input) made safe where it goes:
/// one function walks the text, and each destination says how it spells what it cannot hold.
public enum ControlCharacters {
    /// `text` with each scalar that `spell` has a spelling for replaced by it; the text itself
    /// when none has (no copy for the usual clean text).
    public static func replacing(_ text: some StringProtocol, _ spell: (Unicode.Scalar) -> String?) -> String {
        guard text.unicodeScalars.contains(where: { spell($0) != nil }) else { return String(text) }
        var out = ""
        for scalar in text.unicodeScalars {
            if let spelled = spell(scalar) { out += spelled } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }

    /// For one line of a log or an error: control characters and backslashes as escapes
    /// (`\n`, `\x1B`, `\\`).
    public static func escaped(_ text: some StringProtocol) -> String {
        replacing(text) { scalar in
            switch scalar {
            case "\n": return "\\n"
            case "\r": return "\\r"
            case "\t": return "\\t"
            case "\\": return "\\\\"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: return "\\x" + hex2(scalar.value, uppercase: true)
            default: return nil
            }
        }
    }

    /// Two hex digits of a byte value.
    public static func hex2(_ value: UInt32, uppercase: Bool = false) -> String {
        let digits = String(value, radix: 16, uppercase: uppercase)
        return digits.count < 2 ? "0" + digits : digits
    }
}
