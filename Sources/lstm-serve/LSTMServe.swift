import ArgumentParser
import Foundation
import FrontEnd
import JSON
import LSTMService
import ModelFormat
import ModelRuntime
import NativeAPI
import RecurrentCore

@main
struct LSTMServe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lstm-serve",
        abstract: "Serve and run recurrent networks (LSTM, GRU, RNN) exported from PyTorch, Keras or ONNX.",
        version: LSTMServeVersion.string,
        subcommands: [Serve.self, Inspect.self, Predict.self, Settings.self],
        defaultSubcommand: Serve.self
    )
}

/// Prints a one-line reason and exits non-zero: through the server's logger once its
/// configuration is known (a JSON record with `log_format: json`), else as `lstm-serve: …`.
func fail(_ message: String, log: Log = Log(level: .error)) -> Never {
    // what a file or a flag held may be in the message: one line, no terminal control bytes
    log.fatal(message)
    exit(1)
}

func loadModel(_ path: String) -> Model {
    do { return try Model.load(path: path) } catch { fail(error.description) }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a model's architecture and parameter counts per layer.")

    @Argument(help: "A model directory or a bare PyTorch state_dict .safetensors file.")
    var model: String

    @Flag(help: "Print the model info as JSON (the same document GET /v1/models/{name} answers).")
    var json = false

    func run() throws {
        let m = loadModel(model)
        if json {
            print((try? ModelInfo.json(m).serialized(pretty: true)) ?? "{}")
        } else {
            print(ModelInfo.text(m))
        }
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model on windows from a JSON file and print the outputs as JSON.",
        discussion: """
        The input file is the body POST /v1/predict takes: {"window": [[...], ...]} (rows are
        timesteps), rows as objects keyed by feature name, or {"windows": [...]} for a batch.
        """
    )

    @Option(help: "A model directory or a bare PyTorch state_dict .safetensors file.")
    var model: String

    @Option(help: "The request JSON file ('-' for standard input).")
    var input: String

    @Flag(help: "Also print the top layer's output at every timestep.")
    var sequences = false

    @Flag(help: "Also print the final state (h, and c for LSTM) per layer and direction.")
    var state = false

    func run() throws {
        let m = loadModel(model)
        let data: Data?
        if input == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            data = FileManager.default.contents(atPath: input)
        }
        guard let data else { fail("cannot read \(input)") }
        let body: JSONDocument
        do { body = try JSONDocument(bytes: [UInt8](data)) } catch { fail("\(input): \(error)") }
        do {
            var request = try PredictRequest.decode(body.value, model: m)
            request.returnSequences = request.returnSequences || sequences
            request.returnState = request.returnState || state
            let predictor = Predictor(model: m)
            let result = predictor.run(request, workspace: Workspace(pipeline: m.pipeline, batchSize: request.batchSize))
            print(try NativeAnswers(predictor).response(to: request, result: result).serialized(pretty: true))
        } catch {
            fail("\(error)")  // a request the model refuses (RuntimeError), or JSON that cannot be written
        }
    }
}

struct Settings: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List every configuration key: its flag, environment variable, default and meaning.")

    @Flag(help: "Print the keys as JSON.")
    var json = false

    func run() throws {
        let rows = Configuration.settings.map { s in [("key", s.key), ("flag", s.flag), ("env", s.env), ("default", s.defaultText), ("help", s.help)] }
        if json {
            print(try JSON.array(rows.map { .object($0.map { ($0.0, .string($0.1)) }) }).serialized(pretty: true))
        } else {
            print("| key | flag | environment | default | meaning |\n| --- | --- | --- | --- | --- |")
            for r in rows { print("| " + r.map(\.1).joined(separator: " | ") + " |") }
        }
    }
}
