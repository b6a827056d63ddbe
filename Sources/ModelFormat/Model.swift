import Foundation
import Hashing
import JSON
import RecurrentCore

/// A loaded model: the pipeline plus what users need to call it (names, units, normalization).
///
/// A model is a directory holding `model.safetensors` and optionally `config.json`, or a bare
/// `.safetensors` file (a PyTorch `state_dict`), whose `__metadata__` may carry the config.
public struct Model: Sendable {
    public let name: String
    public let pipeline: Pipeline
    public let config: ModelConfig
    /// The weights file that was read.
    public let weightsPath: String
    public let weightsSHA256: String
    public let weightsByteCount: Int
    /// SHA-256 over the weights and the config: what a stored session checks, so that it never
    /// resumes on other weights or another normalization under the same name and version.
    public let fingerprint: String

    /// File name of the weights inside a model directory.
    public static let weightsFileName = "model.safetensors"
    public static let configFileName = "config.json"

    public init(name: String, pipeline: Pipeline, config: ModelConfig,
                weightsPath: String, weightsSHA256: String, weightsByteCount: Int, fingerprint: String? = nil) {
        self.name = name
        self.pipeline = pipeline
        self.config = config
        self.weightsPath = weightsPath
        self.weightsSHA256 = weightsSHA256
        self.weightsByteCount = weightsByteCount
        self.fingerprint = fingerprint ?? weightsSHA256
    }

    /// Loads a model directory or a bare `.safetensors` file. `name`, when given, is the
    /// model's name (a version directory's model is named by its parent), and a config.json
    /// naming another model is refused.
    public static func load(path: String, name: String? = nil) throws(ModelError) -> Model {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .unreadable(path: path, reason: "no such file or directory")
        }
        let url = URL(fileURLWithPath: path)
        let weightsURL = isDirectory.boolValue ? url.appendingPathComponent(weightsFileName) : url
        let configURL: URL? = isDirectory.boolValue ? url.appendingPathComponent(configFileName) : nil
        let bytes = try read(weightsURL)
        var configBytes: [UInt8]?
        if let configURL, FileManager.default.fileExists(atPath: configURL.path) { configBytes = try read(configURL) }
        let stem = url.deletingPathExtension().lastPathComponent
        let fallbackName = isDirectory.boolValue ? url.lastPathComponent
            : stem == "model" ? url.deletingLastPathComponent().lastPathComponent : stem
        let model = try decode(weights: bytes, config: configBytes, name: name ?? fallbackName, weightsPath: weightsURL.path,
                               configPath: configURL?.path ?? "config.json")
        if let name, model.name != name {
            throw .invalidConfig("\(configURL?.path ?? path) names the model '\(model.name)', but it is a version of '\(name)'; drop the name or make it '\(name)'")
        }
        return model
    }

    /// A model from the bytes of its weights file and, optionally, its `config.json`: every
    /// check `load` makes (the fuzz targets call this). `name` is used when the config has none.
    public static func decode(weights bytes: [UInt8], config configBytes: [UInt8]?, name fallbackName: String,
                              weightsPath: String = "model.safetensors", configPath: String = "config.json") throws(ModelError) -> Model {
        let file: SafeTensors
        do { file = try SafeTensors(bytes: bytes) } catch { throw .safeTensors(path: weightsPath, error) }

        var config = ModelConfig()
        try config.mergeMetadata(file.metadata)
        if let configBytes {
            let document: JSONDocument
            do { document = try JSONDocument(bytes: configBytes) } catch {
                throw .invalidConfig("\(configPath): \(error)")
            }
            try config.merge(document.value)
        }
        var builder = NetworkBuilder(file: file, config: config)
        let pipeline = try builder.build()
        try config.validate(against: pipeline)
        let weightsSHA = SHA256.hex(bytes)
        return Model(name: config.name ?? fallbackName, pipeline: pipeline, config: config,
                     weightsPath: weightsPath, weightsSHA256: weightsSHA, weightsByteCount: bytes.count,
                     fingerprint: configBytes.map { SHA256.hex(Array(weightsSHA.utf8) + $0) } ?? weightsSHA)
    }

    private static func read(_ url: URL) throws(ModelError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            let exists = FileManager.default.fileExists(atPath: url.path)
            throw .unreadable(path: url.path, reason: exists ? "not readable" : "no such file")
        }
        return [UInt8](data)
    }
}

extension ModelConfig {
    /// `__metadata__` may hold the whole config as JSON under `lstm_serve`, or single keys
    /// (`cell`, `nonlinearity`, `gru_reset_after`, `head_activations` comma-separated).
    mutating func mergeMetadata(_ metadata: [String: String]) throws(ModelError) {
        if let text = metadata["lstm_serve"] {
            do { try merge(try JSONDocument(text: text).value) } catch let error as JSONError {
                throw .invalidConfig("__metadata__.lstm_serve: \(error)")
            } catch let error as ModelError { throw error } catch { throw .invalidConfig("\(error)") }
        }
        var flat: [(String, JSON)] = []
        for key in ["cell", "nonlinearity", "head_prefix"] {
            if let v = metadata[key] { flat.append((key, .string(v))) }
        }
        if let v = metadata["gru_reset_after"] { flat.append(("gru_reset_after", .bool(v == "true" || v == "1"))) }
        if let v = metadata["head_activations"] {
            flat.append(("head_activations", .array(v.split(separator: ",").map { .string($0.trimmingCharacters(in: .whitespaces)) })))
        }
        guard !flat.isEmpty else { return }
        do { try merge(try JSONDocument(text: try JSON.object(flat).serialized()).value) } catch let error as ModelError {
            throw error
        } catch { throw .invalidConfig("__metadata__: \(error)") }
    }

    /// Checks the config's sizes against the pipeline's.
    func validate(against pipeline: Pipeline) throws(ModelError) {
        let inputs = pipeline.inputSize
        let outputs = pipeline.outputWidth
        if !features.isEmpty, features.count != inputs {
            throw .invalidConfig("inputs.features names \(features.count) features but the model takes \(inputs)")
        }
        if !self.outputs.isEmpty, self.outputs.count != outputs {
            throw .invalidConfig("outputs names \(self.outputs.count) outputs but the model gives \(outputs)")
        }
        for (key, values, n) in [("input_mean", inputMean, inputs), ("input_std", inputStd, inputs),
                                 ("output_mean", outputMean, outputs), ("output_std", outputStd, outputs)] {
            if let values, values.count != n {
                throw .invalidConfig("normalization.\(key) has \(values.count) values, expected \(n)")
            }
        }
        if let labels, labels.count != outputs {
            throw .invalidConfig("labels names \(labels.count) classes but the model gives \(outputs) outputs")
        }
        if let interval, interval.lower.count != outputs || interval.upper.count != outputs {
            throw .invalidConfig("interval.lower and interval.upper need \(outputs) values each")
        }
        for o in self.outputs {
            guard let base = o.residualOf else { continue }
            guard features.contains(where: { $0.name == base && $0.derived == nil }) else {
                throw .invalidConfig("output '\(o.name)': residual_of '\(base)' is not an observed input feature (inputs.features)")
            }
        }
    }
}
