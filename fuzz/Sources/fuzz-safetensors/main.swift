import FuzzDriver
import ModelFormat
import RecurrentCore

/// Weights files: the safetensors reader and the whole loader (names to layers, shapes, the
/// config in `__metadata__`). The input is the file; when it holds a 0xFF 0x00 0xFF marker,
/// what follows is a config.json beside it. Any input may be refused; none may crash.
func fuzzSafeTensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var weights = bytes, config: [UInt8]?
    if let k = (0..<max(0, bytes.count - 2)).first(where: { bytes[$0] == 0xFF && bytes[$0 + 1] == 0 && bytes[$0 + 2] == 0xFF }) {
        weights = Array(bytes[..<k])
        config = Array(bytes[(k + 3)...])
    }
    if let file = try? SafeTensors(bytes: weights) {
        for name in file.tensors.keys { _ = try? file.floatTensor(name) }
    }
    if let model = try? Model.decode(weights: weights, config: config, name: "fuzz") {
        // a model that loads must also run
        // (a window of the length it takes, of zeros: a valid token id too)
        let net = model.pipeline
        let T = model.config.windowLength ?? 3
        if net.refusal(sequenceLength: T) == nil, T * net.inputSize <= 1 << 20 {
            let window = [Float](repeating: 0, count: T * net.inputSize)
            _ = net.forward(window, sequenceLength: T, workspace: Workspace(pipeline: net, batchSize: 1))
        }
    }
    return 0
}

runFuzzer { data, size in fuzzSafeTensors(data, size) }
