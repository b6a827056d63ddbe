/// FNV-1a (Fowler–Noll–Vo): a fast, well-spread hash of short byte strings, for the log's
/// short session hash. Not for anything an attacker picks to collide on.
public enum FNV1a {
    public static func hash32(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var h: UInt32 = 0x811c_9dc5
        for b in bytes { h = (h ^ UInt32(b)) &* 0x0100_0193 }
        return h
    }
}

extension FixedWidthInteger where Self: UnsignedInteger {
    /// Lowercase hex with every leading zero: 16 digits for a UInt64, 8 for a UInt32.
    public var zeroPaddedHex: String {
        let digits = String(self, radix: 16)
        return String(repeating: "0", count: Self.bitWidth / 4 - digits.count) + digits
    }
}
