// Times the recurrent core: microseconds per window (batch 1 and 64) and per single step.
//   lstm-bench MODEL_DIR [--window 7] [--seconds 2]
import Foundation
import JSON
import ModelFormat
import RecurrentCore

let args = CommandLine.arguments
guard args.count >= 2 else { print("usage: lstm-bench MODEL_DIR [--window N] [--seconds S]"); exit(2) }
func option(_ name: String, _ fallback: Double) -> Double {
    guard let i = args.firstIndex(of: name), i + 1 < args.count, let v = Double(args[i + 1]) else { return fallback }
    return v
}
let window = Int(option("--window", 7))
let seconds = option("--seconds", 2)
if let i = args.firstIndex(of: "--handler") {
    // lstm-bench --handler MODELS_DIR BODY.json: application µs per predict and per step request
    let body = [UInt8](FileManager.default.contents(atPath: args[i + 2])!)
    let us = try await handlerMicroseconds(modelsDirectory: args[i + 1], body: body, seconds: option("--seconds", 2))
    print(String(format: "handler predict_us=%.2f step_us=%.2f", us.predict, us.step))
    exit(0)
}
if let i = args.firstIndex(of: "--protocols") {
    // lstm-bench --protocols MODELS_DIR NATIVE.json V2.json V2_BINARY.body HEADER_LENGTH: application µs
    // per native predict, V2 infer in JSON and V2 infer with binary tensors (bench/load/v2_bodies.py)
    func file(_ k: Int) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: args[i + k])!) }
    let us = try protocolMicroseconds(modelsDirectory: args[i + 1], requests: [
        ("/v1/predict", file(2), nil), ("/v2/models/temperature/infer", file(3), nil), ("/v2/models/temperature/infer", file(4), args[i + 5]),
    ])
    print(String(format: "handler native_us=%.2f v2_json_us=%.2f v2_binary_us=%.2f", us[0], us[1], us[2]))
    let parses = [file(2), file(3)].map { body in measure { _ = try? JSONDocument(bytes: body) } }
    print(String(format: "jansson parse of the body alone: native_us=%.2f v2_json_us=%.2f", parses[0], parses[1]))
    exit(0)
}
let modelPath = args[1]
let model = try Model.load(path: modelPath)
let net = model.pipeline

/// Deterministic inputs in [-1, 1).
func inputs(_ n: Int) -> [Float] {
    var s: UInt64 = 42
    return (0..<n).map { _ in
        s = s &* 6364136223846793005 &+ 1442695040888963407
        return Float(s >> 40) / Float(1 << 24) * 2 - 1
    }
}

/// Runs `body` in a loop for about `seconds`, returns the median of 5 rounds in µs per call.
func measure(_ body: () -> Void) -> Double {
    for _ in 0..<50 { body() }
    let clock = ContinuousClock()
    var calls = 1
    while true {
        let t = clock.measure { for _ in 0..<calls { body() } }
        if t > .milliseconds(Int(seconds * 1000 / 5)) { break }
        calls *= 2
    }
    var rounds: [Double] = []
    for _ in 0..<5 {
        let t = clock.measure { for _ in 0..<calls { body() } }
        rounds.append(Double(t.components.seconds) * 1e6 + Double(t.components.attoseconds) / 1e12)
    }
    return rounds.sorted()[2] / Double(calls)
}

let x1 = inputs(window * net.inputSize)
let ws1 = Workspace(pipeline: net, batchSize: 1)
var sink: Float = 0
let first = net.forward(x1, sequenceLength: window, workspace: ws1)
let perWindow = measure { sink += net.forward(x1, sequenceLength: window, workspace: ws1).output[0] }

var state = net.makeState(batchSize: 1)
let step = Array(x1[0..<net.inputSize])
let perStep = measure { net.step(step, state: &state, workspace: ws1); sink += ws1.output[0] }

let x64 = inputs(64 * window * net.inputSize)
let ws64 = Workspace(pipeline: net, batchSize: 64)
let perBatch = measure { sink += net.forward(x64, sequenceLength: window, workspace: ws64).output[0] }

print(String(format: "swift window_b1_us=%.2f step_b1_us=%.3f window_b64_us=%.2f per_window_in_b64_us=%.3f head0=%.7f",
             perWindow, perStep, perBatch, perBatch / 64, first.output[0]))
if sink == 0.123 { print(sink) }
