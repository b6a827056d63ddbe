import JSON
import ModelFormat
import RecurrentCore

/// A decoded, validated predict call: `{"window": rows}` or `{"windows": [rows, ...]}`, with
/// `return_sequences`, `return_state` and an initial `state` as options.
public struct PredictRequest: Sendable {
    /// (batchSize, sequenceLength, inputSize) in the model's raw units.
    public var inputs: [Float]
    public var batchSize: Int
    public var sequenceLength: Int
    /// True for `windows` (answer is a list), false for `window`.
    public var isBatch: Bool
    public var returnSequences = false
    public var returnState = false
    /// Applied to every window of the batch.
    public var initialState: StateInput?

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

/// A state sent by a client: `{"h": [[...] per layer·direction], "c": [...]}` for one sample.
public struct StateInput: Sendable, Equatable {
    public var h: [[Float]]
    public var c: [[Float]]

    public static func decode(_ json: JSONValue, pipeline network: Pipeline, label: String) throws(RuntimeError) -> StateInput {
        let template = network.makeState(batchSize: 1)
        guard json.kind == .object else { throw .invalidInput("\(label) must be an object with 'h' (and 'c' for LSTM)") }
        if let key = json.firstKey(notIn: ["h", "c"]) {
            throw .invalidInput("\(label) has unknown field '\(key)'; expected 'h' and 'c'")
        }
        let hasCell = network.recurrentLayers.contains { $0.kind.hasCellState }
        func slots(_ key: String, _ width: (Int) -> Int) throws(RuntimeError) -> [[Float]] {
            guard let v = json[key] else {
                if key == "c" && !hasCell { return [] }
                throw .invalidInput("\(label).\(key) is missing; expected \(template.slotCount) arrays (one per layer and direction)")
            }
            if key == "c" && !hasCell { throw .invalidInput("\(label).c given, but a \(network.recurrentLayers.first.map { "\($0.kind)" } ?? "model without recurrent layers") has no cell state") }
            guard v.kind == .array, v.count == template.slotCount else {
                throw .invalidInput("\(label).\(key) must be an array of \(template.slotCount) arrays (one per layer and direction)")
            }
            var out: [[Float]] = []
            for s in 0..<template.slotCount {
                var values: [Float] = []
                guard let slot = v[s], slot.kind == .array, slot.appendNumbers(to: &values) == nil,
                      values.count == width(s), values.allSatisfy(\.isFinite)
                else { throw .invalidInput("\(label).\(key)[\(s)] must be \(width(s)) finite numbers") }
                out.append(values)
            }
            return out
        }
        let h = try slots("h") { template.hiddenWidth(slot: $0) }
        let c = try slots("c") { template.cellWidth(slot: $0) }
        return StateInput(h: h, c: c)
    }

    /// This state repeated for `batchSize` samples.
    public func state(for network: Pipeline, batchSize: Int) -> RecurrentState {
        var state = network.makeState(batchSize: batchSize)
        for s in 0..<h.count {
            state.setHidden(slot: s, Array((0..<batchSize).map { _ in h[s] }.joined()))
            if !c.isEmpty && !c[s].isEmpty { state.setCell(slot: s, Array((0..<batchSize).map { _ in c[s] }.joined())) }
        }
        return state
    }

    /// Sample `b` of a batched state.
    public init(_ state: RecurrentState, sample b: Int) {
        h = (0..<state.slotCount).map { s in
            let w = state.hiddenWidth(slot: s)
            return Array(state.hidden(slot: s)[b * w..<(b + 1) * w])
        }
        c = (0..<state.slotCount).compactMap { s in
            let w = state.cellWidth(slot: s)
            return w == 0 ? nil : Array(state.cell(slot: s)[b * w..<(b + 1) * w])
        }
    }

    init(h: [[Float]], c: [[Float]]) {
        self.h = h
        self.c = c
    }

    public var json: JSON {
        var members: [(String, JSON)] = [("h", .array(h.map { .floats($0) }))]
        if !c.isEmpty { members.append(("c", .array(c.map { .floats($0) }))) }
        return .object(members)
    }
}
