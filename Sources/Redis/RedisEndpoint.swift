/// Where Redis is: `redis://HOST:PORT[,HOST:PORT…][/DB]`. Several nodes are seeds of one
/// deployment (any of them answers for a cluster); the database is for a single Redis only,
/// since a cluster has database 0 alone.
public struct RedisLocation: Sendable, Equatable, CustomStringConvertible {
    public struct Node: Sendable, Hashable, CustomStringConvertible {
        public let host: String
        public let port: Int
        public init(host: String, port: Int) { (self.host, self.port) = (host, port) }
        public var description: String { "\(host):\(port)" }

        /// `host:port` (an IPv6 host in brackets), as URLs and cluster redirects write it.
        public init?(_ text: Substring) {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
                  (1...65535).contains(port) else { return nil }
            var host = text[..<colon]
            if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
            guard !host.isEmpty else { return nil }
            (self.host, self.port) = (String(host), port)
        }
    }

    public let nodes: [Node]
    public let database: Int

    public init(nodes: [Node], database: Int = 0) { (self.nodes, self.database) = (nodes, database) }

    /// Reads a `redis://` URL, or says why it is not one.
    public static func parse(_ url: String) -> Result<RedisLocation, RedisError> {
        read(url).mapError { why in .protocolError("'\(url)' is not a Redis location (\(why)); write redis://HOST:PORT[,HOST:PORT…][/DB]") }
    }

    /// The location, or the short reason it is not one.
    public static func read(_ url: String) -> Result<RedisLocation, Problem> {
        guard url.hasPrefix("redis://") else { return .failure(Problem("it must start with redis://")) }
        var rest = url.dropFirst("redis://".count)
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let db = rest[rest.index(after: slash)...]
            if !db.isEmpty {
                guard let n = Int(db), (0...15).contains(n) else { return .failure(Problem("the database must be a number from 0 to 15")) }
                database = n
            }
            rest = rest[..<slash]
        }
        var nodes: [Node] = []
        for part in rest.split(separator: ",", omittingEmptySubsequences: false) {
            guard let node = Node(part) else { return .failure(Problem("'\(part)' is not HOST:PORT")) }
            nodes.append(node)
        }
        guard !nodes.isEmpty else { return .failure(Problem("no node")) }
        return .success(RedisLocation(nodes: nodes, database: database))
    }

    public struct Problem: Error, CustomStringConvertible {
        public let description: String
        init(_ d: String) { description = d }
    }

    public var description: String {
        "redis://" + nodes.map(\.description).joined(separator: ",") + (database == 0 ? "" : "/\(database)")
    }
}
