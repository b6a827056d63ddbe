import JSON
import ModelFormat
import ModelRuntime

/// The native predict body: `{"window": rows}` or `{"windows": [rows, ...]}`, with
/// `return_sequences`, `return_state` and an initial `state` as options.
extension PredictRequest {
    public static let knownKeys = ["window", "windows", "return_sequences", "return_state", "state"]

    public static func decode(_ body: JSONValue, model: Model) throws(RuntimeError) -> PredictRequest {
        guard body.kind == .object else {
            throw .invalidInput("request body must be an object like {\"window\": [[...], ...]}, got \(body.kindName)")
        }
        if let key = body.firstKey(notIn: knownKeys) {
            throw .invalidInput("unknown field '\(key)'; expected one of \(knownKeys.sorted().joined(separator: ", "))")
        }
        let decoder = WindowDecoder(model: model)
        var inputs: [Float] = []
        var request: PredictRequest
        switch (body["window"], body["windows"]) {
        case let (window?, nil):
            let rows = try decoder.decode(window, into: &inputs, label: "window")
            request = PredictRequest(inputs: inputs, batchSize: 1, sequenceLength: rows, isBatch: false)
        case let (nil, windows?):
            guard windows.kind == .array, windows.count > 0 else {
                throw .invalidInput("windows must be a non-empty array of windows")
            }
            var rows = 0
            for b in 0..<windows.count {
                let n = try decoder.decode(windows[b]!, into: &inputs, label: "windows[\(b)]")
                if b > 0, n != rows {
                    throw .invalidInput("windows[\(b)] has \(n) rows but windows[0] has \(rows); all windows of a batch need the same length")
                }
                rows = n
            }
            request = PredictRequest(inputs: inputs, batchSize: windows.count, sequenceLength: rows, isBatch: true)
        case (nil, nil):
            throw .invalidInput("missing 'window' (an array of rows) or 'windows' (an array of windows)")
        case (_?, _?):
            throw .invalidInput("send either 'window' or 'windows', not both")
        }
        request.returnSequences = try flag(body, "return_sequences")
        request.returnState = try flag(body, "return_state")
        if let state = body["state"] {
            request.initialState = try StateInput.decode(state, pipeline: model.pipeline, label: "state")
        }
        return request
    }

    private static func flag(_ body: JSONValue, _ key: String) throws(RuntimeError) -> Bool {
        guard let v = body[key] else { return false }
        guard let b = v.bool else { throw .invalidInput("\(key) must be true or false, got \(v.kindName)") }
        return b
    }
}
