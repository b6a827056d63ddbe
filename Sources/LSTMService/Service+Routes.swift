/// Routing: a request's path to the endpoint that answers it, on the path's bytes, with names
/// and ids as slices of the path (nothing is copied to route a request).
extension Service {
    /// A matched route: its pattern (the metrics label) and the answer.
    enum Route {
        // Names and ids are slices of the request's path: nothing is copied to route a request.
        case health, ready, metrics, models, model(Substring), predict(Substring?), sessions
        case session(Substring), step(Substring), state(Substring)

        /// The metrics labels, by `index`.
        static let patterns = ["/healthz", "/readyz", "/metrics", "/v1/models", "/v1/models/{name}", "/v1/predict",
                               "/v1/models/{name}/predict", "/v1/sessions", "/v1/sessions/{id}", "/v1/sessions/{id}/step",
                               "/v1/sessions/{id}/state"]

        var index: Int {
            switch self {
            case .health: return 0
            case .ready: return 1
            case .metrics: return 2
            case .models: return 3
            case .model: return 4
            case .predict(nil): return 5
            case .predict: return 6
            case .sessions: return 7
            case .session: return 8
            case .step: return 9
            case .state: return 10
            }
        }

        var pattern: String { Self.patterns[index] }

        /// The scope a token needs here; nil for health and metrics unless guarded.
        func scope(guardingHealth: Bool) -> AccessPolicy.Scope? {
            switch self {
            case .health, .ready, .metrics: return guardingHealth ? .infer : nil
            default: return .infer
            }
        }

        /// The session id in the path, for the session routes.
        var sessionID: Substring? {
            switch self {
            case let .session(id), let .step(id), let .state(id): return id
            default: return nil
            }
        }

        var allowed: [String] {
            switch self {
            case .health, .ready, .metrics, .models, .model: return ["GET"]
            case .predict, .sessions, .step: return ["POST"]
            case .session: return ["GET", "DELETE"]
            case .state: return ["GET", "PUT"]
            }
        }
    }

    static func route(_ path: String) -> Route? {
        // the fixed paths as sent, without splitting
        switch path {
        case "/v1/predict": return .predict(nil)
        case "/healthz": return .health
        case "/readyz": return .ready
        case "/metrics": return .metrics
        case "/v1/models": return .models
        case "/v1/sessions": return .sessions
        default: break
        }
        // Segments are found on bytes and kept as slices of the path: splitting a String on a
        // Character walks grapheme clusters (9% of a step's CPU once), and an array of parts
        // is an allocation per request.
        var segments = PathSegments(path)
        let s0 = segments.next(), s1 = segments.next(), s2 = segments.next(), s3 = segments.next()
        guard let s0, segments.next() == nil else { return nil }
        func `is`(_ s: Substring?, _ word: StaticString) -> Bool {
            guard let s else { return false }
            return s.utf8.elementsEqual(UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount))
        }
        guard let s1 else {
            if `is`(s0, "healthz") { return .health }
            if `is`(s0, "readyz") { return .ready }
            if `is`(s0, "metrics") { return .metrics }
            return nil
        }
        guard `is`(s0, "v1") else { return nil }
        switch (s2, s3) {
        case (nil, _):
            if `is`(s1, "models") { return .models }
            if `is`(s1, "predict") { return .predict(nil) }
            if `is`(s1, "sessions") { return .sessions }
        case let (name?, nil):
            if `is`(s1, "models") { return .model(name) }
            if `is`(s1, "sessions") { return .session(name) }
        case let (name?, last?):
            if `is`(s1, "models"), `is`(last, "predict") { return .predict(name) }
            if `is`(s1, "sessions"), `is`(last, "step") { return .step(name) }
            if `is`(s1, "sessions"), `is`(last, "state") { return .state(name) }
        }
        return nil
    }

    /// The non-empty '/'-separated parts of a path, as slices of it.
    struct PathSegments: IteratorProtocol {
        let path: String
        var position: String.Index

        init(_ path: String) {
            self.path = path
            position = path.utf8.startIndex
        }

        mutating func next() -> Substring? {
            let bytes = path.utf8, slash = UInt8(ascii: "/")
            while position < bytes.endIndex, bytes[position] == slash { bytes.formIndex(after: &position) }
            guard position < bytes.endIndex else { return nil }
            let start = position
            while position < bytes.endIndex, bytes[position] != slash { bytes.formIndex(after: &position) }
            return path[start..<position]
        }
    }
}
