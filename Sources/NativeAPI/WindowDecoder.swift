import JSON
import ModelFormat
import ModelRuntime

/// Reads windows from request JSON into the model's input layout, checking every value.
///
/// A window is an array of rows (timesteps). A row is either an array of numbers in the
/// model's feature order, or an object keyed by feature name (then derived features such as
/// the day of year come from its `date`).
public struct WindowDecoder {
    public let model: Model

    public init(model: Model) { self.model = model }

    private var features: [ModelConfig.Feature] { model.config.features }
    private var inputSize: Int { model.pipeline.inputSize }
    /// Features a user sends: all, less the derived ones.
    private var observed: [ModelConfig.Feature] { features.filter { $0.derived == nil } }

    /// Labels (for error messages) are built only when there is an error.
    /// Decodes `window` (rows) and appends inputSize values per row to `values`; returns the row count.
    public func decode(_ window: JSONValue, into values: inout [Float], label: @autoclosure () -> String) throws(RuntimeError) -> Int {
        guard window.kind == .array else { throw .invalidInput("\(label()) must be an array of rows, got \(window.kindName)") }
        let rows = window.count
        if let expected = model.config.windowLength, rows != expected {
            throw .invalidInput("\(label()) has \(rows) rows, model '\(model.name)' expects \(expected)")
        }
        guard rows > 0 else { throw .invalidInput("\(label()) is empty; send at least one row") }
        if let why = model.pipeline.refusal(sequenceLength: rows) { throw .invalidInput("\(label()): \(why)") }
        values.reserveCapacity(values.count + rows * inputSize)
        for t in 0..<rows {
            try decodeRow(window[t]!, into: &values, label: "\(label())[\(t)]")
        }
        return rows
    }

    /// One timestep.
    public func decodeRow(_ row: JSONValue, into values: inout [Float], label: @autoclosure () -> String) throws(RuntimeError) {
        let start = values.count
        try decodeValues(row, into: &values, label: label())
        if let embedding = model.pipeline.inputEmbedding {
            for k in start..<values.count where embedding.id(values[k]) == nil {
                throw .invalidInput("\(label()) is \(values[k]); model '\(model.name)' takes token ids, integers from 0 to \(embedding.count - 1)")
            }
        }
    }

    private func decodeValues(_ row: JSONValue, into values: inout [Float], label: @autoclosure () -> String) throws(RuntimeError) {
        let dims = model.pipeline.inputShape.dims
        if dims.count > 1 {
            try decodeFrame(row, dims[...], into: &values, label: label())
            return
        }
        switch row.kind {
        case .integer where inputSize == 1 && features.allSatisfy({ $0.derived == nil }),
             .real where inputSize == 1 && features.allSatisfy({ $0.derived == nil }):
            let f = Float(row.double!)
            guard f.isFinite else { throw .invalidInput("\(label()) is not a finite number") }
            values.append(f)
        case .array:
            if features.contains(where: { $0.derived != nil }) {
                throw .invalidInput("\(label()): model '\(model.name)' derives \(derivedNames) from each row's date; send rows as objects with a 'date' (e.g. {\"date\": \"2015-03-01\", ...})")
            }
            guard row.count == inputSize else {
                throw .invalidInput("\(label()) has \(row.count) values, model '\(model.name)' expects \(inputSize)\(featureList)")
            }
            let start = values.count
            if let bad = row.appendNumbers(to: &values) {
                values.removeSubrange(start...)
                throw .invalidInput("\(label())[\(bad)] is \(row[bad]!.kindName), expected a number")
            }
            for k in start..<values.count where !values[k].isFinite {
                throw .invalidInput("\(label())[\(k - start)] is not a finite number")
            }
        case .object:
            guard !features.isEmpty else {
                throw .invalidInput("\(label()): model '\(model.name)' has no feature names; send rows as arrays of \(inputSize) numbers")
            }
            var day: Int?
            if features.contains(where: { $0.derived != nil }) {
                guard let text = row["date"]?.string else {
                    throw .invalidInput("\(label()) has no 'date'; model '\(model.name)' derives \(derivedNames) from an ISO 8601 date such as \"2015-03-01\"")
                }
                guard let d = CalendarFeatures.dayOfYear(text) else {
                    throw .invalidInput("\(label()).date '\(text)' is not an ISO 8601 date (YYYY-MM-DD)")
                }
                day = d
            }
            // Counting matched keys instead of hashing every key keeps the common path cheap.
            var matched = day == nil ? 0 : 1
            for feature in features {
                if let derivation = feature.derived {
                    values.append(CalendarFeatures.value(derivation, dayOfYear: day!))
                    continue
                }
                guard let v = row[feature.name] else {
                    throw .invalidInput("\(label()) is missing feature '\(feature.name)'; expected \(observed.map(\.name).joined(separator: ", "))")
                }
                guard let d = v.double else {
                    throw .invalidInput("\(label()).\(feature.name) is \(v.kindName), expected a number")
                }
                let f = Float(d)
                guard f.isFinite else { throw .invalidInput("\(label()).\(feature.name) is not a finite number") }
                values.append(f)
                matched += 1
            }
            if row.count != matched {
                let allowed = Set(features.map(\.name) + ["date"])
                for key in row.keys where !allowed.contains(key) {
                    throw .invalidInput("\(label()) has unknown feature '\(key)'; expected \(observed.map(\.name).joined(separator: ", "))")
                }
            }
        default:
            throw .invalidInput("\(label()) is \(row.kindName), expected \(inputSize == 1 ? "a number, " : "")an array of \(inputSize) numbers or an object keyed by feature name")
        }
    }

    /// A row that is a nested array (a frame: rows, then columns, then channels), checked
    /// level by level against the model's row shape.
    private func decodeFrame(_ v: JSONValue, _ dims: ArraySlice<Int>, into values: inout [Float], label: @autoclosure () -> String) throws(RuntimeError) {
        let shape = model.pipeline.inputShape.dims.map(String.init).joined(separator: "×")
        guard v.kind == .array, v.count == dims.first! else {
            throw .invalidInput("\(label()) must be \(dims.count == model.pipeline.inputShape.dims.count ? "a \(shape) nested array" : "an array of \(dims.first!)"); got \(v.kind == .array ? "\(v.count) values" : v.kindName)")
        }
        if dims.count == 1 {
            let start = values.count
            if let bad = v.appendNumbers(to: &values) {
                values.removeSubrange(start...)
                throw .invalidInput("\(label())[\(bad)] is \(v[bad]!.kindName), expected a number")
            }
            for k in start..<values.count where !values[k].isFinite { throw .invalidInput("\(label())[\(k - start)] is not a finite number") }
            return
        }
        for i in 0..<v.count { try decodeFrame(v[i]!, dims.dropFirst(), into: &values, label: "\(label())[\(i)]") }
    }

    private var derivedNames: String {
        features.filter { $0.derived != nil }.map(\.name).joined(separator: ", ")
    }

    private var featureList: String {
        observed.isEmpty ? "" : " (\(features.map(\.name).joined(separator: ", ")))"
    }
}
