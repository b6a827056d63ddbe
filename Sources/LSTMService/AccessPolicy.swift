import Foundation
import FrontEnd
import HTTPServer

/// Who may call what, from where: bearer tokens with scopes, the Host names this server
/// answers for (DNS rebinding), and the browser origins CORS lets in. All off by default.
public struct AccessPolicy: Sendable {
    public enum Scope: String, Sendable, CaseIterable {
        /// predict, model info, sessions
        case infer
        /// everything, including what changes the server (reload, when it comes)
        case admin
    }

    struct Token: Sendable {
        let secret: [UInt8]
        let scopes: Set<Scope>
    }

    let tokens: [Token]
    /// Health and metrics need a token too.
    let guardsHealthAndMetrics: Bool
    /// Lowercased host names (no port); empty: any.
    let allowedHosts: Set<String>
    /// Exact origins, or "*"; empty: no CORS headers, preflights refused.
    let allowedOrigins: Set<String>

    public init(tokens: [(String, Set<Scope>)] = [], guardsHealthAndMetrics: Bool = false,
                allowedHosts: [String] = [], allowedOrigins: [String] = []) {
        self.tokens = tokens.map { Token(secret: Array($0.0.utf8), scopes: $0.1) }
        self.guardsHealthAndMetrics = guardsHealthAndMetrics
        self.allowedHosts = Set(allowedHosts.map { $0.lowercased() })
        self.allowedOrigins = Set(allowedOrigins)
    }

    /// Reads a token file: one token per line, optionally followed by its scopes (`infer`,
    /// `admin`; none means every scope); blank lines and `#` comments are skipped.
    public static func tokens(file path: String) throws(ConfigurationError) -> [(String, Set<Scope>)] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw .invalid("auth_token_file: cannot read \(Log.escaped(path))")
        }
        var out: [(String, Set<Scope>)] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard words[0].count >= 16, words[0].utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
                throw .invalid("auth_token_file: line \(n + 1): a token is at least 16 visible ASCII characters")
            }
            var scopes = Set<Scope>()
            for w in words.dropFirst() {
                guard let s = Scope(rawValue: w) else { throw .invalid("auth_token_file: line \(n + 1): unknown scope '\(Log.escaped(w))' (infer or admin)") }
                scopes.insert(s)
            }
            out.append((words[0], scopes.isEmpty ? Set(Scope.allCases) : scopes))
        }
        guard !out.isEmpty else { throw .invalid("auth_token_file: \(Log.escaped(path)) holds no token") }
        return out
    }

    /// The request headers the policy reads (so the HTTP server looks up only those).
    var headersToRead: [String] {
        var h: [String] = []
        if !tokens.isEmpty { h.append("Authorization") }
        if !allowedHosts.isEmpty { h.append("Host") }
        if !allowedOrigins.isEmpty { h += ["Origin", "Access-Control-Request-Method"] }
        return h
    }

    /// 421 when the Host is not one this server answers for (checked before routing).
    func hostRefusal(_ request: HTTPRequest) -> APIError? {
        guard !allowedHosts.isEmpty else { return nil }
        let host = request.header("host").map(Self.hostName) ?? ""
        return allowedHosts.contains(host) ? nil : APIError(.misdirected, "this server does not answer for host '\(host)'; see allowed_hosts")
    }

    /// Why `request` may not go to a route needing `scope` (nil for open routes), or nil.
    func refusal(_ request: HTTPRequest, scope: Scope?) -> APIError? {
        if !allowedOrigins.isEmpty, let origin = request.header("origin"), !originAllowed(origin) {
            return APIError(.forbidden, "origin '\(origin)' is not allowed; see allowed_origins")
        }
        guard !tokens.isEmpty, let scope else { return nil }
        let challenge = ("WWW-Authenticate", #"Bearer realm="lstm-serve""#)
        guard let header = request.header("authorization"), header.count > 7, header.prefix(7).lowercased() == "bearer " else {
            return APIError(.unauthorized, "this endpoint needs a bearer token (Authorization: Bearer <token>)", headers: [challenge])
        }
        guard let token = match(Array(header.utf8.dropFirst(7))) else {
            return APIError(.unauthorized, "the bearer token is not valid", headers: [("WWW-Authenticate", #"Bearer realm="lstm-serve", error="invalid_token""#)])
        }
        guard token.scopes.contains(scope) || token.scopes.contains(.admin) else {
            return APIError(.forbidden, "the token lacks the '\(scope.rawValue)' scope",
                            headers: [("WWW-Authenticate", #"Bearer realm="lstm-serve", error="insufficient_scope", scope="\#(scope.rawValue)""#)])
        }
        return nil
    }

    /// The token equal to `candidate`, compared in time that depends only on the lengths:
    /// every token is compared, every byte of each, whatever matched.
    func match(_ candidate: [UInt8]) -> Token? {
        var found: Token?
        for token in tokens {
            var difference = UInt8(token.secret.count == candidate.count ? 0 : 1)
            for k in 0..<token.secret.count {
                difference |= token.secret[k] ^ (k < candidate.count ? candidate[k] : 0)
            }
            if difference == 0 { found = token }
        }
        return found
    }

    func originAllowed(_ origin: String) -> Bool { allowedOrigins.contains("*") || allowedOrigins.contains(origin) }

    /// CORS headers for an allowed origin's request.
    func corsHeaders(_ request: HTTPRequest) -> [(String, String)] {
        guard !allowedOrigins.isEmpty, let origin = request.header("origin"), originAllowed(origin) else { return [] }
        return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin"), ("Access-Control-Expose-Headers", "X-Request-ID, Location, Retry-After")]
    }

    /// The answer to a CORS preflight for a route allowing `methods`.
    func preflight(_ request: HTTPRequest, methods: [String]) -> HTTPResponse {
        var headers = [("Allow", (methods + ["OPTIONS"]).joined(separator: ", "))]
        if let origin = request.header("origin") {
            guard !allowedOrigins.isEmpty, originAllowed(origin) else {
                return Service.reply(APIError(.forbidden, "origin '\(origin)' is not allowed; see allowed_origins"))
            }
            headers += [("Access-Control-Allow-Origin", origin), ("Vary", "Origin"),
                        ("Access-Control-Allow-Methods", methods.joined(separator: ", ")),
                        ("Access-Control-Allow-Headers", "Content-Type, Authorization, X-Request-ID"),
                        ("Access-Control-Max-Age", "600")]
        }
        return HTTPResponse(status: 204, headers: headers)
    }

    /// `example.com:8080` → `example.com`; `[::1]:8080` → `::1`.
    static func hostName(_ host: String) -> String {
        let h = host.lowercased()
        if h.hasPrefix("["), let end = h.firstIndex(of: "]") { return String(h[h.index(after: h.startIndex)..<end]) }
        if let colon = h.lastIndex(of: ":"), h.firstIndex(of: ":") == colon { return String(h[..<colon]) }
        return h
    }
}
