import Foundation
import ModelFormat
import RecurrentCore
import TestSupport
import Testing

/// config.json's `layers`: where each layer's tensors are, and the errors when they do not fit.
@Suite struct LayerListTests {
    func load(_ tensors: [String: ([Int], [Float])], _ layers: String) throws -> Model {
        try Model.load(path: try TestModels.write(tensors, config: "{\"layers\": \(layers)}"))
    }

    func error(_ tensors: [String: ([Int], [Float])], _ layers: String) -> String? {
        do { _ = try load(tensors, layers); return nil } catch { return "\(error)" }
    }

    /// An LSTMCell (`cell.weight_ih`, no `_l0`) and a Linear under the user's own names.
    var cellModel: [String: ([Int], [Float])] {
        var t: [String: ([Int], [Float])] = [:]
        for (name, value) in TestModels.lstm("cell.", input: 2, hidden: 3) { t[name.replacingOccurrences(of: "_l0", with: "")] = value }
        t["linear.weight"] = ([2, 3], [0.1, 0.2, 0.3, -0.1, -0.2, -0.3])
        t["linear.bias"] = ([2], [0.5, -0.5])
        return t
    }

    @Test func anyAttributeNamesAndCellTensorsArePlacedByTheList() throws {
        let m = try load(cellModel, #"[{"type": "lstm", "name": "cell", "return_sequences": false}, {"type": "dense", "weights": "linear", "activation": "softmax"}]"#)
        #expect(m.pipeline.names == ["cell", "linear"])
        #expect(m.pipeline.outputShape == .vector(2) && m.pipeline.isStreamable)
        let y = m.pipeline.forward([0.5, -1, 1, 2], sequenceLength: 2, workspace: Workspace(pipeline: m.pipeline, batchSize: 1)).output
        #expect(abs(y[0] + y[1] - 1) < 1e-6)
    }

    @Test func aTensorNoEntryPlacesNamesTheEntryThatWould() {
        #expect(error(cellModel, #"[{"type": "lstm", "name": "cell", "return_sequences": false}]"#)
            == #"tensor 'linear.bias' is placed by no entry of config.json's layers; a Linear layer: add {"type": "dense", "weights": "linear"} (or conv1d, conv2d, embedding, layer_normalization)"#)
        var t = cellModel
        t["encoder.weight_ih_l0"] = ([12, 2], Array(repeating: 0.1, count: 24))
        #expect(error(t, #"[{"type": "lstm", "name": "cell", "return_sequences": false}, {"type": "dense", "weights": "linear"}]"#)
            == #"tensor 'encoder.weight_ih_l0' is placed by no entry of config.json's layers; a recurrent module: add {"type": "lstm" (or gru, rnn), "weights": "encoder"}"#)
    }

    @Test func layersThatDoNotFitNameBothLayers() {
        // the Linear reads 3 values per timestep; a flatten over an unknown window length cannot be sized
        #expect(error(cellModel, #"[{"type": "lstm", "name": "cell"}, {"type": "flatten_sequence", "name": "flat"}, {"type": "dense", "weights": "linear"}]"#)
            == "flat (flatten over time) takes a sequence of fixed length (the config's inputs.window) but cell (lstm) gives (T, 3)")
    }

    @Test func badEntriesAreRefusedInOneLine() {
        let cases: [(String, String)] = [
            (#"[{"type": "conv3d"}]"#, "invalid model config: layers[0]: type 'conv3d' is not one of lstm, gru, rnn, dense, activation, dropout, last_timestep, flatten_sequence, repeat_vector, conv2d, max_pooling2d, average_pooling2d, flatten, reshape, permute, batch_normalization, layer_normalization, embedding, conv1d, max_pooling1d, average_pooling1d, global_max_pooling1d, global_average_pooling1d"),
            (#"[{"type": "permute", "dims": [1, 1]}]"#, "invalid model config: layers[0] (permute) needs 'dims', the row's axes 1...n in their new order, e.g. [2, 3, 1]"),
            (#"[{"type": "permute", "dims": [2, 1]}, {"type": "lstm", "name": "cell"}]"#, "invalid model config: layers[0] (permute) has dims [2, 1] but its rows have shape unknown (set inputs.shape)"),
            (#"[{"type": "lstm", "name": "cell", "units": 3}]"#, "invalid model config: layers[0] (lstm): unknown key 'units' (known: activation, bidirectional, go_backwards, merge_mode, name, num_layers, recurrent_activation, return_sequences, type, weights)"),
            (#"[{"type": "lstm", "name": "cell", "activation": "softmax"}]"#, "invalid model config: layers[0].activation: a recurrent cell's activation must be elementwise, not softmax"),
            (#"[{"type": "dense"}]"#, #"invalid model config: layers[0] (dense) needs 'weights', the tensor name prefix (e.g. "lstm" for lstm.weight_ih_l0)"#),
            (#"[{"type": "activation"}]"#, "invalid model config: layers[0] (activation) needs 'activation'"),
            (#"[{"type": "lstm", "name": "cell", "merge_mode": "max"}]"#, "invalid model config: layers[0].merge_mode 'max' is not one of concat, sum, mul, ave"),
            (#"[]"#, "invalid model config: layers must be a non-empty array of objects"),
            (#"[{"type": "gru", "name": "cell"}, {"type": "dense", "weights": "linear"}]"#, "tensor 'cell.weight_ih' has shape [12, 2], expected 3 × hidden size 3 rows for gru"),
        ]
        for (layers, message) in cases {
            #expect(error(cellModel, layers) == message, "\(layers)")
        }
    }
}
