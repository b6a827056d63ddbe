import FrontEnd
import JSON
import Locking
import ModelRuntime
import SessionStore

/// Prometheus counters and histograms, kept under one lock (a few additions per request).
/// Requests are counted by route index (the labels are given once), so counting one hashes a
/// single integer, not strings.
public final class Metrics: SessionEvents, FrontEndEvents {
    static let buckets: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]
    /// Methods counted by name; any other is counted as "other", so a client cannot grow the
    /// label set without bound.
    static let methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "other"]

    /// Route labels by index, then "unmatched".
    let routes: [String]

    struct Histogram {
        /// Per bucket (not cumulative); the last slot is beyond the largest bound.
        var counts = [Int](repeating: 0, count: Metrics.buckets.count + 1)
        var sum = 0.0
        var count = 0
        mutating func add(bucket k: Int, _ seconds: Double) { counts[k] += 1; sum += seconds; count += 1 }
    }
    struct State {
        /// Keyed by `key(route:method:status:)`.
        var requests: [Int: Int] = [:]
        /// By route index.
        var latency: [Histogram]
        var sessionsCreated = 0, sessionsExpired = 0, sessionsEvicted = 0, sessionsDeleted = 0
        var stepsDirect = 0, stepsQueued = 0
        /// The durable store's transactions, the changes they held, and the ones that failed.
        var storeCommits = 0, storeChanges = 0, storeFailures = 0, checkpoints = 0, checkpointFailures = 0
        var reloadsOK = 0, reloadsFailed = 0, versionsUnloaded = 0
    }

    private let state: Locked<State>

    /// `routes`: the label of each route index; requests that match none use index `routes.count`.
    public init(routes: [String] = []) {
        self.routes = routes + ["unmatched"]
        state = Locked(State(latency: Array(repeating: Histogram(), count: routes.count + 1)))
    }

    var unmatched: Int { routes.count - 1 }

    static func methodIndex(_ method: String) -> Int {
        switch method {
        case "GET": return 0
        case "HEAD": return 1
        case "POST": return 2
        case "PUT": return 3
        case "DELETE": return 4
        case "OPTIONS": return 5
        case "PATCH": return 6
        default: return 7
        }
    }

    private static func key(route: Int, method: Int, status: Int) -> Int { route << 24 | method << 16 | (status & 0xFFFF) }

    /// Counts one request; `route` is an index into `routes` (out of range counts as unmatched).
    func record(route: Int, method: String, status: Int, seconds: Double) {
        let r = routes.indices.contains(route) ? route : unmatched
        let k = Self.key(route: r, method: Self.methodIndex(method), status: status)
        // the first bucket that holds it; cumulative counts are summed when rendered
        let b = Self.buckets.firstIndex { seconds <= $0 } ?? Self.buckets.count
        state.withLock { s in
            s.requests[k, default: 0] += 1
            s.latency[r].add(bucket: b, seconds)
        }
    }

    public func sessionCreated() { state.withLock { $0.sessionsCreated += 1 } }
    public func sessionsExpired(_ n: Int) { if n > 0 { state.withLock { $0.sessionsExpired += n } } }
    public func sessionEvicted() { state.withLock { $0.sessionsEvicted += 1 } }
    public func sessionDeleted() { state.withLock { $0.sessionsDeleted += 1 } }
    /// A step run on the HTTP thread (its shard was idle) or queued behind the shard's actor.
    func modelReload(ok: Bool) { state.withLock { if ok { $0.reloadsOK += 1 } else { $0.reloadsFailed += 1 } } }
    func modelUnloaded() { state.withLock { $0.versionsUnloaded += 1 } }

    public func storeCheckpointed(ok: Bool) {
        state.withLock { if ok { $0.checkpoints += 1 } else { $0.checkpointFailures += 1 } }
    }

    public func storeCommitted(changes: Int, failed: Bool) {
        state.withLock {
            $0.storeCommits += 1
            $0.storeChanges += changes
            if failed { $0.storeFailures += 1 }
        }
    }
    public func sessionStep(direct: Bool) { state.withLock { if direct { $0.stepsDirect += 1 } else { $0.stepsQueued += 1 } } }

    /// A label value as the exposition format needs it: backslash, quote and newline escaped.
    static func label(_ value: String) -> String {
        ControlCharacters.replacing(value) { scalar in
            switch scalar {
            case "\\": return "\\\\"
            case "\"": return "\\\""
            case "\n": return "\\n"
            default: return nil
            }
        }
    }

    /// What the transport reports at scrape time.
    struct Transport { var requestsInFlight = 0, connectionsOpen = 0 }

    /// The text exposition format.
    func render(activeSessions: Int, models: ModelRegistry?, transport: Transport) -> String {
        let s = state.withLock { $0 }
        var out = "# HELP lstm_serve_requests_total Requests by route, method and status.\n# TYPE lstm_serve_requests_total counter\n"
        let requests = s.requests.map { (route: routes[$0.key >> 24], method: Self.methods[($0.key >> 16) & 0xFF], status: $0.key & 0xFFFF, n: $0.value) }
        for r in requests.sorted(by: { ($0.route, $0.method, $0.status) < ($1.route, $1.method, $1.status) }) {
            out += "lstm_serve_requests_total{route=\"\(r.route)\",method=\"\(r.method)\",status=\"\(r.status)\"} \(r.n)\n"
        }
        out += "# HELP lstm_serve_request_duration_seconds Time from request start to response, by route.\n# TYPE lstm_serve_request_duration_seconds histogram\n"
        for (route, h) in zip(routes, s.latency).filter({ $0.1.count > 0 }).sorted(by: { $0.0 < $1.0 }) {
            var cumulative = 0
            for (k, b) in Self.buckets.enumerated() {
                cumulative += h.counts[k]
                out += "lstm_serve_request_duration_seconds_bucket{route=\"\(route)\",le=\"\(b)\"} \(cumulative)\n"
            }
            out += "lstm_serve_request_duration_seconds_bucket{route=\"\(route)\",le=\"+Inf\"} \(h.count)\n"
            out += "lstm_serve_request_duration_seconds_sum{route=\"\(route)\"} \(h.sum)\n"
            out += "lstm_serve_request_duration_seconds_count{route=\"\(route)\"} \(h.count)\n"
        }
        out += "# HELP lstm_serve_sessions_active Sessions held now.\n# TYPE lstm_serve_sessions_active gauge\nlstm_serve_sessions_active \(activeSessions)\n"
        for (name, help, v) in [("created", "Sessions created.", s.sessionsCreated), ("expired", "Sessions dropped after their idle TTL.", s.sessionsExpired),
                                ("evicted", "Sessions evicted (least recently used) to make room.", s.sessionsEvicted),
                                ("deleted", "Sessions deleted by clients.", s.sessionsDeleted)] {
            out += "# HELP lstm_serve_sessions_\(name)_total \(help)\n# TYPE lstm_serve_sessions_\(name)_total counter\nlstm_serve_sessions_\(name)_total \(v)\n"
        }
        out += "# HELP lstm_serve_session_steps_total Step requests by how they reached the session: direct (its shard was idle) or queued (behind the shard's actor).\n# TYPE lstm_serve_session_steps_total counter\n"
        out += "lstm_serve_session_steps_total{path=\"direct\"} \(s.stepsDirect)\nlstm_serve_session_steps_total{path=\"queued\"} \(s.stepsQueued)\n"
        for (name, help, v) in [("commits", "Writes to the durable session store's step log (a group commit each).", s.storeCommits),
                                ("changes", "Session changes those writes held.", s.storeChanges),
                                ("failures", "Writes that failed (their changes were refused with 503).", s.storeFailures)] {
            out += "# HELP lstm_serve_session_store_\(name)_total \(help)\n# TYPE lstm_serve_session_store_\(name)_total counter\nlstm_serve_session_store_\(name)_total \(v)\n"
        }
        out += "# HELP lstm_serve_session_store_checkpoints_total Step logs moved into the database, by result (a failed one is kept and tried again).\n# TYPE lstm_serve_session_store_checkpoints_total counter\n"
        out += "lstm_serve_session_store_checkpoints_total{result=\"ok\"} \(s.checkpoints)\nlstm_serve_session_store_checkpoints_total{result=\"failed\"} \(s.checkpointFailures)\n"
        out += "# HELP lstm_serve_requests_in_flight Requests begun and not yet answered.\n# TYPE lstm_serve_requests_in_flight gauge\n"
        out += "lstm_serve_requests_in_flight \(transport.requestsInFlight)\n"
        out += "# HELP lstm_serve_connections_open Connections open now.\n# TYPE lstm_serve_connections_open gauge\nlstm_serve_connections_open \(transport.connectionsOpen)\n"
        if let models {
            out += "# HELP lstm_serve_model_info Loaded models (value 1).\n# TYPE lstm_serve_model_info gauge\n"
            for e in models.allEntries {
                let (m, name) = (e.model, e.model.name)
                out += "lstm_serve_model_info{model=\"\(Self.label(name))\",cell=\"\(m.pipeline.recurrentLayers.first.map { "\($0.kind)" } ?? "none")\",parameters=\"\(m.pipeline.parameterCount)\",sha256=\"\(m.weightsSHA256)\",version=\"\(e.version)\",default=\"\(name == models.defaultName && e === models[name])\"} 1\n"
            }
            out += "# HELP lstm_serve_model_load_failures Models asked for that could not be loaded.\n# TYPE lstm_serve_model_load_failures gauge\n"
            out += "lstm_serve_model_load_failures \(models.failed.count)\n"
        }
        out += "# HELP lstm_serve_model_reloads_total Reloads of the model repository, by whether every version asked for loaded.\n# TYPE lstm_serve_model_reloads_total counter\n"
        out += "lstm_serve_model_reloads_total{result=\"ok\"} \(s.reloadsOK)\nlstm_serve_model_reloads_total{result=\"failed\"} \(s.reloadsFailed)\n"
        out += "# HELP lstm_serve_model_versions_unloaded_total Retired model versions that left memory after their last session.\n# TYPE lstm_serve_model_versions_unloaded_total counter\n"
        out += "lstm_serve_model_versions_unloaded_total \(s.versionsUnloaded)\n"
        out += "# HELP lstm_serve_build_info The server's version (value 1).\n# TYPE lstm_serve_build_info gauge\n"
        out += "lstm_serve_build_info{version=\"\(LSTMServeVersion.string)\"} 1\n"
        let p = ProcessStats.read()
        out += "# HELP process_cpu_seconds_total User and system CPU time spent.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total \(p.cpuSeconds)\n"
        out += "# HELP process_resident_memory_bytes Resident memory size.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes \(p.residentBytes)\n"
        out += "# HELP process_virtual_memory_bytes Virtual memory size.\n# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes \(p.virtualBytes)\n"
        out += "# HELP process_open_fds Open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds \(p.openFDs)\n"
        out += "# HELP process_start_time_seconds Start time since the Unix epoch.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds \(p.startTime)\n"
        return out
    }
}
