import Foundation
import JSON

/// Paths to `Tests/Fixtures`, found from this file's location.
public enum Fixtures {
    public static let root: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(2)  // TestSupport/Fixtures.swift
        return parts.joined(separator: "/") + "/Fixtures"
    }()

    public static func path(_ relative: String) -> String { root + "/" + relative }

    public static func bytes(_ relative: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path(relative)) else {
            throw CocoaError(.fileNoSuchFile)
        }
        return [UInt8](data)
    }

    public static func json(_ relative: String) throws -> JSONDocument {
        try JSONDocument(bytes: try bytes(relative))
    }

    /// The golden case names (directories under `golden/`).
    /// The project's whole-model cases (tools/generate_golden.py --pipelines).
    public static let pipelineCases: [String] = {
        (try? FileManager.default.contentsOfDirectory(atPath: path("pipelines")))?
            .filter { !$0.contains(".") }.sorted() ?? []
    }()

    public static let goldenCases: [String] = {
        (try? FileManager.default.contentsOfDirectory(atPath: path("golden")))?
            .filter { !$0.contains(".") }.sorted() ?? []
    }()
}

/// Every number of a nested JSON array, row-major.
public func flatten(_ value: JSONValue) -> [Float] {
    var out: [Float] = []
    func walk(_ v: JSONValue) {
        if v.kind == .array {
            if v.appendNumbers(to: &out) != nil {
                for e in v.elements { walk(e) }
            }
        } else if let d = v.double {
            out.append(Float(d))
        }
    }
    walk(value)
    return out
}

/// Element-wise |got − expected| ≤ tol + tol·|expected|. Returns the worst index and excess,
/// or nil when everything is within tolerance.
public func firstMismatch(_ got: [Float], _ expected: [Float], tolerance tol: Float) -> String? {
    guard got.count == expected.count else { return "count \(got.count) != \(expected.count)" }
    for (k, (g, e)) in zip(got, expected).enumerated() where !(abs(g - e) <= tol + tol * abs(e)) {
        return "index \(k): got \(g), expected \(e), diff \(abs(g - e)), tolerance \(tol + tol * abs(e))"
    }
    return nil
}

public func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}
