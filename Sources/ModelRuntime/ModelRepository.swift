import Foundation

/// Where models come from: the `models_directory` (each directory in it a model) or the paths
/// given, and which of each model's versions to serve.
///
/// A model directory holding numbered directories (`models/temperature/2/`) has those as its
/// versions, as in Triton and TF Serving; one without them is version 1 of itself, and so is a
/// bare `.safetensors` file.
public struct ModelRepository: Sendable, Equatable {
    public let paths: [String]
    public let directory: String
    public let policy: VersionPolicy

    public init(paths: [String] = [], directory: String, policy: VersionPolicy = VersionPolicy()) {
        self.paths = paths
        self.directory = directory
        self.policy = policy
    }

    /// One model on disk: its path and the versions found there, newest first.
    public struct Source: Sendable, Equatable {
        public let path: String
        /// The directory's name: a versioned model's name, the fallback of an unversioned one.
        public let directoryName: String
        /// Whether the versions are numbered subdirectories (the model is then named by its
        /// directory, whatever a version's config.json says).
        public let versioned: Bool
        public let versions: [(number: Int, path: String)]

        public static func == (a: Source, b: Source) -> Bool {
            a.path == b.path && a.versioned == b.versioned && a.versions.map(\.number) == b.versions.map(\.number)
        }
    }

    /// The sources as the disk holds them now.
    public func scan() throws(RuntimeError) -> [Source] {
        var list = paths
        if list.isEmpty {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            list = names.sorted().filter { !$0.hasPrefix(".") }.map { directory + "/" + $0 }.filter(Self.isDirectory)
            guard !list.isEmpty else { throw .loading("no model directories under \(directory)") }
        }
        return list.map(Self.source)
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    static func source(_ path: String) -> Source {
        let url = URL(fileURLWithPath: path)
        let stem = url.deletingPathExtension().lastPathComponent
        guard isDirectory(path) else { return Source(path: path, directoryName: stem, versioned: false, versions: [(1, path)]) }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        let numbered = entries.compactMap { name -> (Int, String)? in
            guard let n = versionNumber(name), isDirectory(path + "/" + name) else { return nil }
            return (n, path + "/" + name)
        }.sorted { $0.0 > $1.0 }
        if numbered.isEmpty { return Source(path: path, directoryName: url.lastPathComponent, versioned: false, versions: [(1, path)]) }
        return Source(path: path, directoryName: url.lastPathComponent, versioned: true, versions: numbered)
    }

    /// A version directory's number: digits only, 1 or more, without leading zeros.
    public static func versionNumber(_ name: String) -> Int? {
        guard !name.isEmpty, name.count <= 9, name.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), name.first != "0" else { return nil }
        return Int(name)
    }

    /// What a poll compares: every version's files with their sizes and modification times.
    /// It changes when a version is added, removed or rewritten, without reading any weights.
    public func stamp() -> String {
        guard let sources = try? scan() else { return "" }
        var text = ""
        for s in sources {
            for v in s.versions {
                text += "\(s.path)#\(v.number):\(FileStamp(path: v.path).description);"
            }
        }
        return text
    }
}

/// The size and modification time of a version's weights and config, to tell a version
/// rewritten on disk from one that is as loaded (a reload reuses the latter without reading it).
public struct FileStamp: Sendable, Equatable, CustomStringConvertible {
    let parts: [String]

    public init(path: String) {
        let files = ModelRepository.isDirectory(path) ? [path + "/model.safetensors", path + "/config.json"] : [path]
        parts = files.map { file in
            guard let a = try? FileManager.default.attributesOfItem(atPath: file) else { return "-" }
            let size = (a[.size] as? NSNumber)?.int64Value ?? -1
            let time = (a[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            let inode = (a[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
            return "\(size)/\(time)/\(inode)"
        }
    }

    public var description: String { parts.joined(separator: ",") }
}

/// Which versions of a model are served: the newest N that load (default: the newest one),
/// all of them, or the ones named. Written `latest`, `latest:2`, `all`, `specific:1,3`, and
/// per model after a default: `latest; temperature=specific:1,3`.
public struct VersionPolicy: Sendable, Equatable, CustomStringConvertible {
    public enum Rule: Sendable, Equatable, CustomStringConvertible {
        case latest(Int)
        case all
        case specific([Int])

        public var description: String {
            switch self {
            case let .latest(n): return n == 1 ? "latest" : "latest:\(n)"
            case .all: return "all"
            case let .specific(v): return "specific:" + v.map(String.init).joined(separator: ",")
            }
        }
    }

    public var rule: Rule = .latest(1)
    public var perModel: [String: Rule] = [:]

    public init() {}

    public init(parsing text: String) throws(RuntimeError) {
        for part in text.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            if let eq = part.firstIndex(of: "=") {
                let name = part[..<eq].trimmingCharacters(in: .whitespaces)
                guard !name.isEmpty else { throw .loading("model_version_policy: '\(part)' names no model before '='") }
                perModel[name] = try Self.rule(String(part[part.index(after: eq)...]).trimmingCharacters(in: .whitespaces))
            } else {
                rule = try Self.rule(part)
            }
        }
    }

    static func rule(_ text: String) throws(RuntimeError) -> Rule {
        let (head, tail) = text.firstIndex(of: ":").map { (String(text[..<$0]), String(text[text.index(after: $0)...])) } ?? (text, nil)
        func count(_ s: String) -> Int? { ModelRepository.versionNumber(s.trimmingCharacters(in: .whitespaces)) }
        switch (head, tail) {
        case ("latest", nil): return .latest(1)
        case let ("latest", n?):
            guard let n = count(n) else { throw .loading("model_version_policy: 'latest:\(n)' needs a whole number of versions from 1") }
            return .latest(n)
        case ("all", nil): return .all
        case let ("specific", list?):
            let parts = list.split(separator: ",", omittingEmptySubsequences: false)
            let numbers = parts.compactMap { count(String($0)) }
            guard !numbers.isEmpty, numbers.count == parts.count else {
                throw .loading("model_version_policy: 'specific:\(list)' needs version numbers separated by commas, such as specific:1,3")
            }
            return .specific(numbers.sorted(by: >))
        default:
            throw .loading("model_version_policy: '\(text)' is not latest, latest:N, all or specific:V,V")
        }
    }

    public func rule(for name: String) -> Rule { perModel[name] ?? rule }

    public var description: String {
        ([rule.description] + perModel.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }).joined(separator: "; ")
    }
}
