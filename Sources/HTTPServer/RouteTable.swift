/// Every route of a server declared once: its pattern (also its metrics label), the methods it
/// answers (also its `Allow`), and what answers it. Patterns are '/'-separated literals and
/// `{parameters}`; a request's path is matched on its bytes, and parameters come back as slices
/// of it, so routing a request copies nothing.
public struct RouteTable<Endpoint: Sendable>: Sendable {
    public struct Route: Sendable {
        public let pattern: String
        public let methods: [String]
        public let endpoint: Endpoint
        /// `Allow`'s value: the methods, comma-separated.
        public let allow: String

        public init(_ pattern: String, _ methods: [String], _ endpoint: Endpoint) {
            self.pattern = pattern
            self.methods = methods
            self.endpoint = endpoint
            allow = methods.joined(separator: ", ")
        }

        /// Whether `method` is answered here (HEAD wherever GET is).
        public func allows(_ method: String) -> Bool {
            methods.contains(method) || (method == "HEAD" && methods.contains("GET"))
        }
    }

    /// A path matched: the route's index in the table and up to two parameters, in order.
    public struct Match: Sendable {
        public let index: Int
        public let first: Substring?
        public let second: Substring?
    }

    public let routes: [Route]
    /// Per route, its segments: literal bytes, or nil for a parameter.
    private let segments: [[[UInt8]?]]

    public init(_ routes: [Route]) {
        self.routes = routes
        segments = routes.map { route in
            route.pattern.split(separator: "/").map { $0.hasPrefix("{") ? nil : Array($0.utf8) }
        }
        for s in segments { precondition(s.filter { $0 == nil }.count <= 2, "at most two parameters per route") }
    }

    /// The metrics labels, by route index.
    public var patterns: [String] { routes.map(\.pattern) }

    /// The first route whose pattern fits `path` (empty segments, as in `//`, are skipped).
    public func match(_ path: String) -> Match? {
        // up to six segments, held as slices: an array of parts would be an allocation per request
        var parts = PathSegments(path)
        var found: (Substring?, Substring?, Substring?, Substring?, Substring?, Substring?) = (nil, nil, nil, nil, nil, nil)
        var count = 0
        while let s = parts.next() {
            guard count < 6 else { return nil }
            switch count {
            case 0: found.0 = s
            case 1: found.1 = s
            case 2: found.2 = s
            case 3: found.3 = s
            case 4: found.4 = s
            default: found.5 = s
            }
            count += 1
        }
        func part(_ k: Int) -> Substring {
            switch k {
            case 0: return found.0!
            case 1: return found.1!
            case 2: return found.2!
            case 3: return found.3!
            case 4: return found.4!
            default: return found.5!
            }
        }
        next: for (index, pattern) in segments.enumerated() where pattern.count == count {
            var params: (Substring?, Substring?) = (nil, nil)
            for (k, literal) in pattern.enumerated() {
                let s = part(k)
                if let literal {
                    guard s.utf8.elementsEqual(literal) else { continue next }
                } else if params.0 == nil {
                    params.0 = s
                } else {
                    params.1 = s
                }
            }
            return Match(index: index, first: params.0, second: params.1)
        }
        return nil
    }
}

/// The non-empty '/'-separated parts of a path, as slices of it (found on bytes: splitting a
/// String on a Character walks grapheme clusters, 9% of a step's CPU once).
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
