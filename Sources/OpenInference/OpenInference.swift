import FrontEnd
import HTTPServer
import JSON
import ModelRuntime
import SessionStore

/// The Open Inference Protocol V2 (KServe's REST API, with Triton's extensions for binary
/// tensors, sequences, statistics and model configuration), on the same runtime as `/v1`.
/// Errors are `{"error": "message"}`; a request the model cannot take is a 400.
public struct OpenInference: APIFrontEnd, Sendable {
    let context: FrontEndContext
    /// Each version's answer writers.
    let answers: PerVersion<V2Answers>

    public init(_ context: FrontEndContext, answers: PerVersion<V2Answers>) { (self.context, self.answers) = (context, answers) }

    public static func envelope(_ error: APIError) -> HTTPResponse {
        let status = error.kind == .unprocessable ? 400 : error.status
        let json = JSON.object([("error", .string(error.message))])
        return HTTPResponse(status: status, headers: jsonHeaders + error.headers, body: Array(((try? json.serialized()) ?? "{}").utf8))
    }

    /// The V2 answer writer of a model version.
    func v2Answers(_ entry: ModelRegistry.Entry) -> V2Answers { answers(entry) }
}

extension OpenInference {
    static let v2Extensions = ["binary_tensor_data", "sequence", "statistics", "model_configuration"]

    /// `GET /v2`: the server's name, version and extensions.
    public static func v2ServerMetadata() -> HTTPResponse {
        reply(200, .object([("name", .string("lstm-serve")), ("version", .string(LSTMServeVersion.string)),
                            ("extensions", .array(v2Extensions.map { .string($0) }))]))
    }

    /// `GET /v2/health/ready`: models loaded and not draining.
    public static func v2Ready(_ ready: Bool) -> HTTPResponse {
        Self.reply(ready ? 200 : 503, .object([("ready", .bool(ready))]))
    }

    static func tensorJSON(_ t: TensorSignature.Tensor) -> JSON {
        .object([("name", .string(t.name)), ("datatype", .string(t.datatype)), ("shape", .array(t.shape.map { .int($0) }))])
    }

    public func v2Metadata(_ entry: ModelRegistry.Entry, _ registry: ModelRegistry) -> JSON {
        let s = entry.signature
        let versions = (registry.versions[entry.model.name] ?? [entry]).map { JSON.string(String($0.version)) }
        return .object([("name", .string(entry.model.name)), ("versions", .array(versions)), ("platform", .string("lstm-serve")),
                        ("inputs", .array(s.inputs.map(Self.tensorJSON))), ("outputs", .array(s.outputs.map(Self.tensorJSON)))])
    }

    /// Triton's model configuration: tensors without the batch axis (`max_batch_size` > 0),
    /// the sequence batcher's idle timeout for a model sessions can step, and the names of the
    /// forecast's columns.
    public func v2Config(_ entry: ModelRegistry.Entry) -> JSON {
        let s = entry.signature
        func tensor(_ t: TensorSignature.Tensor) -> JSON {
            let type = t.datatype == "BYTES" ? "TYPE_STRING" : "TYPE_\(t.datatype)"
            return .object([("name", .string(t.name)), ("data_type", .string(type)), ("dims", .array(t.shape.dropFirst().map { .int($0) }))])
        }
        var members: [(String, JSON)] = [
            ("name", .string(entry.model.name)), ("platform", .string("lstm-serve")), ("backend", .string("lstm-serve")),
            ("version_policy", v2VersionPolicy(entry.model.name)),
            ("max_batch_size", .int(context.maxBatch)),
            ("input", .array(s.inputs.map(tensor))), ("output", .array(s.outputs.map(tensor))),
        ]
        if entry.model.pipeline.isStreamable {
            members.append(("sequence_batching", .object([("max_sequence_idle_microseconds", .int(Int(context.sessionTTL * 1e6)))])))
        }
        let names = s.outputNames.joined(separator: ",")
        members.append(("parameters", .object([("output_names", .object([("string_value", .string(names))]))])))
        return .object(members)
    }

    /// The served policy in Triton's words: `latest {num_versions}`, `all {}`, `specific {versions}`.
    func v2VersionPolicy(_ name: String) -> JSON {
        switch context.models.registry?.repository?.policy.rule(for: name) ?? .latest(1) {
        case let .latest(n): return .object([("latest", .object([("num_versions", .int(n))]))])
        case .all: return .object([("all", .object([]))])
        case let .specific(v): return .object([("specific", .object([("versions", .array(v.map { .int($0) }))]))])
        }
    }

    public func v2Statistics(_ entry: ModelRegistry.Entry) -> JSON {
        let st = entry.statistics
        func duration(_ d: InferenceStatistics.Duration) -> JSON {
            let v = d.value
            return .object([("count", .int(v.count)), ("ns", .int(v.nanoseconds))])
        }
        let zero = JSON.object([("count", .int(0)), ("ns", .int(0))])
        return .object([
            ("name", .string(entry.model.name)), ("version", .string(String(entry.version))),
            ("last_inference", .int(st.lastInferenceMilliseconds)),
            ("inference_count", .int(st.inferenceCount)), ("execution_count", .int(st.executionCount)),
            ("inference_stats", .object([
                ("success", duration(st.success)), ("fail", duration(st.fail)), ("queue", duration(st.queue)),
                ("compute_input", duration(st.computeInput)), ("compute_infer", duration(st.computeInfer)),
                ("compute_output", duration(st.computeOutput)), ("cache_hit", zero), ("cache_miss", zero),
            ])),
            ("batch_stats", .array([])),
        ])
    }
}
