import JSON
import ModelRuntime
import RecurrentCore

/// A state in the native API, named per layer:
/// `{"layers": {"lstm": {"h": [...], "c": [...]}, "encoder": {"h": ..., "h_reverse": ...},
/// "conv": {"history": [[row], ...]}}}`, keyed by the layer names `inspect` shows. Imports also
/// take PyTorch's slot form `{"h": [[...] per layer·direction], "c": [...]}` when the model has
/// no layer with a history.
extension StateInput {
    /// What each stateful layer owns: its name, its first slot and direction count, or its history slot.
    struct Owner {
        let name: String
        let slot: Int, directions: Int
        let historySlot: Int?
        let rows: Int, channels: Int
    }

    static func owners(_ pipeline: Pipeline) -> [Owner] {
        var out: [Owner] = []
        var slot = 0, historySlot = 0
        for (k, layer) in pipeline.layers.enumerated() {
            switch layer {
            case let .recurrent(r):
                out.append(Owner(name: pipeline.names[k], slot: slot, directions: r.directions.count, historySlot: nil, rows: 0, channels: 0))
                slot += r.directions.count
            case let .conv1d(c) where c.historyRows > 0:
                out.append(Owner(name: pipeline.names[k], slot: 0, directions: 0, historySlot: historySlot, rows: c.historyRows, channels: c.inputChannels))
                historySlot += 1
            default: break
            }
        }
        return out
    }

    public static func decode(_ json: JSONValue, pipeline: Pipeline, label: String) throws(RuntimeError) -> StateInput {
        guard json.kind == .object else { throw .invalidInput("\(label) must be an object with 'layers' (see GET /v1/sessions/{id}/state)") }
        let template = pipeline.makeState(batchSize: 1)
        var result = StateInput(h: (0..<template.slotCount).map { [Float](repeating: 0, count: template.hiddenWidth(slot: $0)) },
                                c: (0..<template.slotCount).map { [Float](repeating: 0, count: template.cellWidth(slot: $0)) },
                                history: (0..<template.historyCount).map { [Float](repeating: 0, count: template.historyWidth(slot: $0)) })
        func numbers(_ v: JSONValue?, _ count: Int, _ at: String) throws(RuntimeError) -> [Float] {
            var values: [Float] = []
            guard let v, v.kind == .array, v.appendNumbers(to: &values) == nil, values.count == count, values.allSatisfy(\.isFinite) else {
                throw .invalidInput("\(at) must be \(count) finite numbers")
            }
            return values
        }
        guard let layers = json["layers"] else { return try legacy(json, template: template, pipeline: pipeline, label: label) }
        if let key = json.firstKey(notIn: ["layers"]) { throw .invalidInput("\(label) has unknown field '\(key)'; expected 'layers'") }
        let owners = owners(pipeline)
        guard layers.kind == .object else { throw .invalidInput("\(label).layers must be an object keyed by layer name") }
        for key in layers.keys where !owners.contains(where: { $0.name == key }) {
            throw .invalidInput("\(label).layers has '\(key)', which is not a layer with state; expected \(owners.map { "'\($0.name)'" }.joined(separator: ", "))")
        }
        for owner in owners {
            let at = "\(label).layers.\(owner.name)"
            guard let entry = layers[owner.name], entry.kind == .object else { throw .invalidInput("\(at) is missing; every layer with state needs its entry") }
            if let k = owner.historySlot {
                if let key = entry.firstKey(notIn: ["history"]) { throw .invalidInput("\(at) has unknown field '\(key)'; expected 'history'") }
                guard let rows = entry["history"], rows.kind == .array, rows.count == owner.rows else {
                    throw .invalidInput("\(at).history must be \(owner.rows) rows of \(owner.channels) numbers (oldest first)")
                }
                var flat: [Float] = []
                for r in 0..<owner.rows { flat += try numbers(rows[r], owner.channels, "\(at).history[\(r)]") }
                result.history[k] = flat
                continue
            }
            var keys: [String] = []
            for d in 0..<owner.directions {
                let suffix = d == 1 ? "_reverse" : "", slot = owner.slot + d
                keys.append("h" + suffix)
                result.h[slot] = try numbers(entry["h" + suffix], template.hiddenWidth(slot: slot), "\(at).h\(suffix)")
                if template.cellWidth(slot: slot) > 0 {
                    keys.append("c" + suffix)
                    result.c[slot] = try numbers(entry["c" + suffix], template.cellWidth(slot: slot), "\(at).c\(suffix)")
                }
            }
            if let key = entry.firstKey(notIn: keys) { throw .invalidInput("\(at) has unknown field '\(key)'; expected \(keys.joined(separator: ", "))") }
        }
        return result
    }

    /// PyTorch's slot lists: `h` (and `c` for LSTM) per layer and direction.
    private static func legacy(_ json: JSONValue, template: RecurrentState, pipeline network: Pipeline, label: String) throws(RuntimeError) -> StateInput {
        if let conv = owners(network).first(where: { $0.historySlot != nil }) {
            throw .invalidInput("\(label) needs 'layers': layer \(conv.name) keeps a history that the h/c form cannot carry")
        }
        if let key = json.firstKey(notIn: ["h", "c"]) {
            throw .invalidInput("\(label) has unknown field '\(key)'; expected 'layers' (or 'h' and 'c')")
        }
        let hasCell = network.recurrentLayers.contains { $0.kind.hasCellState }
        func slots(_ key: String, _ width: (Int) -> Int) throws(RuntimeError) -> [[Float]] {
            guard let v = json[key] else {
                if key == "c" && !hasCell { return (0..<template.slotCount).map { _ in [] } }
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
        return StateInput(h: try slots("h") { template.hiddenWidth(slot: $0) }, c: try slots("c") { template.cellWidth(slot: $0) }, history: [])
    }

    /// The named form, for `pipeline`.
    public func json(for pipeline: Pipeline) -> JSON {
        let layers: [(String, JSON)] = Self.owners(pipeline).map { owner in
            if let k = owner.historySlot {
                let rows = (0..<owner.rows).map { r in JSON.floats(history[k][r * owner.channels..<(r + 1) * owner.channels]) }
                return (owner.name, .object([("history", .array(rows))]))
            }
            var members: [(String, JSON)] = []
            for d in 0..<owner.directions {
                let suffix = d == 1 ? "_reverse" : "", slot = owner.slot + d
                members.append(("h" + suffix, .floats(h[slot][...])))
                if !c[slot].isEmpty { members.append(("c" + suffix, .floats(c[slot][...]))) }
            }
            return (owner.name, .object(members))
        }
        return .object([("layers", .object(layers))])
    }
}
