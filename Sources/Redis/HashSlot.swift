/// Redis Cluster's key → slot rule: CRC16 (XMODEM) of the key, or of its hash tag (the part
/// between the first `{` and the next `}`, when not empty), modulo 16384. Keys that share a
/// tag share a slot, so one script can touch them all.
public enum HashSlot {
    public static let count = 16384

    public static func of(_ key: [UInt8]) -> Int {
        var bytes = key[...]
        if let open = key.firstIndex(of: UInt8(ascii: "{")),
           let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1 {
            bytes = key[(open + 1)..<close]
        }
        return Int(crc16(bytes) & 0x3FFF)
    }

    public static func of(_ key: String) -> Int { of(Array(key.utf8)) }

    /// CRC-16/XMODEM (polynomial 0x1021, initial 0), bit by bit: keys are short.
    public static func crc16(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for b in bytes {
            crc ^= UInt16(b) << 8
            for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        }
        return crc
    }
}
