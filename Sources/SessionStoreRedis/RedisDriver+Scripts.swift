import Redis
import SessionStore

/// The scripts by name, loaded once: calls name them by SHA-1 (`EVALSHA`) and send the source
/// only to a node that does not have it yet (a fresh replica after a failover).
struct Scripts: Sendable {
    enum Name: CaseIterable, Sendable { case put, read, create, remove }

    static func source(_ name: Name) -> String {
        switch name {
        case .put: return RedisScripts.put
        case .read: return RedisScripts.read
        case .create: return RedisScripts.create
        case .remove: return RedisScripts.remove
        }
    }

    private let shas: [Name: [UInt8]]

    init(_ client: RedisClient) throws(RedisError) {
        var shas: [Name: [UInt8]] = [:]
        for name in Name.allCases {
            // the digest is the source's, whichever node computes it
            let node = client.primaries[0]
            let reply = try client.withConnection(node) { c throws(RedisError) in try c.call("SCRIPT", "LOAD", Self.source(name)) }
            guard case let .bytes(sha) = reply else { throw .protocolError("SCRIPT LOAD answered \(reply)") }
            shas[name] = sha
        }
        self.shas = shas
    }

    func sha(_ name: Name) -> [UInt8] { shas[name]! }
}

extension RedisDriver {
    /// What a script found (see `RedisScripts`).
    enum Outcome {
        /// No such session: its tombstone's word and its index score, each "" when absent.
        case missing(why: String, score: String)
        /// The session changed since the revision given: its value now (nil when not sent).
        case changed([UInt8]?)
        /// Done: the rest of the script's answer, and how many replicas took the change when
        /// it was sent with `wait`.
        case done([RedisReply], replicated: Int?)
    }

    /// Runs a script on the session's node; with `wait`, `WAIT` follows in the same round trip.
    func run(_ name: Scripts.Name, _ id: String, _ args: [[UInt8]], wait: Bool = false) throws(SessionError) -> Outcome {
        let keys = self.keys.scriptKeys(id)
        func command(_ head: [[UInt8]]) -> [[[UInt8]]] {
            var commands = [head + [Array("3".utf8)] + keys + args]
            if wait, durability.replicas > 0, durability.strict || !isReplicaless(keys[0]) {
                commands.append(["WAIT", String(durability.replicas), String(durability.timeoutMilliseconds)].map { Array($0.utf8) })
            }
            return commands
        }
        var replies: [RedisReply]
        do {
            replies = try client.pipeline(key: keys[0], command([Array("EVALSHA".utf8), scripts.sha(name)]))
            if replies[0].errorText?.hasPrefix("NOSCRIPT") == true {
                replies = try client.pipeline(key: keys[0], command([Array("EVAL".utf8), Array(Scripts.source(name).utf8)]))
            }
        } catch {
            throw .unavailable("the session store (Redis) cannot be reached: \(error)")
        }
        if let e = replies[0].errorText { throw .unavailable("the session store (Redis) refused the change: \(e)") }
        guard let answer = replies[0].array, let code = answer.first?.integer else {
            throw .unavailable("the session store (Redis) answered a script with \(replies[0])")
        }
        switch code {
        case 0: return .missing(why: answer.count > 1 ? answer[1].text ?? "" : "", score: answer.count > 2 ? answer[2].text ?? "" : "")
        case 1:
            if answer.count > 1, case let .bytes(v) = answer[1] { return .changed(v) }
            return .changed(nil)
        default: return .done(Array(answer.dropFirst()), replicated: replies.count > 1 ? replies[1].integer ?? 0 : nil)
        }
    }
}
