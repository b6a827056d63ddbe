import Foundation

/// Small weight files written by the tests themselves.
public enum TestModels {
    /// Writes `tensors` (name → (shape, values)) as F32 safetensors into a fresh directory.
    public static func write(_ tensors: [String: ([Int], [Float])], metadata: [String: String] = [:], config: String? = nil) throws -> String {
        var header: [String] = []
        if !metadata.isEmpty {
            header.append("\"__metadata__\":{" + metadata.map { "\"\($0.key)\":\"\($0.value)\"" }.joined(separator: ",") + "}")
        }
        var data: [UInt8] = []
        for name in tensors.keys.sorted() {
            let (shape, values) = tensors[name]!
            let start = data.count
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data += $0 } }
            header.append("\"\(name)\":{\"dtype\":\"F32\",\"shape\":\(shape),\"data_offsets\":[\(start),\(data.count)]}")
        }
        let h = Array(("{" + header.joined(separator: ",") + "}").utf8)
        let bytes = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(h.count) >> (8 * UInt64($0))) } + h + data
        let dir = NSTemporaryDirectory() + "lstm-serve-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        if let config { try Data(config.utf8).write(to: URL(fileURLWithPath: dir + "/config.json")) }
        return dir
    }

    public static func lstm(_ prefix: String = "rnn.", layer: Int = 0, input: Int = 2, hidden: Int = 3) -> [String: ([Int], [Float])] {
        let g = 4 * hidden
        return [
            "\(prefix)weight_ih_l\(layer)": ([g, input], .init(repeating: 0.1, count: g * input)),
            "\(prefix)weight_hh_l\(layer)": ([g, hidden], .init(repeating: 0.1, count: g * hidden)),
            "\(prefix)bias_ih_l\(layer)": ([g], .init(repeating: 0.1, count: g)),
            "\(prefix)bias_hh_l\(layer)": ([g], .init(repeating: 0.1, count: g)),
        ]
    }
}
