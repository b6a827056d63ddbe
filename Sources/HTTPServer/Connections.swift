internal import CMicroHTTPD
import Foundation
import Locking
import Synchronization

/// One TCP connection's state, from MHD's "started" notification to its "closed" one; lives in
/// MHD's `*socket_context`.
final class ConnectionState: @unchecked Sendable {
    let fd: Int32
    /// Accepted past `connectionLimit`: its first request is answered 503 and it is closed.
    let overLimit: Bool
    /// When the connection started or last finished a request (DispatchTime nanoseconds):
    /// headers and body of the next request must arrive within the deadline from then.
    let phaseStart: Atomic<UInt64>
    /// A request of this connection is with the handler (or suspended): not cut meanwhile.
    let busy = Atomic<Bool>(false)
    /// Shut down by the deadline already.
    var cut = false
    /// The request target exactly as received (set by MHD's URI callback, read on the first
    /// access call): it lives in the connection's read buffer until the request ends.
    var rawTarget: UnsafePointer<CChar>?
    var rawTargetLength = 0

    init(fd: Int32, overLimit: Bool, now: UInt64) {
        self.fd = fd
        self.overLimit = overLimit
        phaseStart = Atomic(now)
    }
}

/// Every open connection, counted against the limits, with a reaper that enforces the request
/// deadline. MHD's idle timeout restarts on every byte, so a client trickling a byte a second
/// would otherwise hold its slot forever.
final class Connections: @unchecked Sendable {
    let limit: Int
    /// Connections past `limit` are still accepted (to be told 503) up to this many; past it
    /// they are refused at accept.
    let hardLimit: Int
    let deadlineNanos: UInt64
    let open = Atomic<Int>(0)
    private let all = Locked<[ObjectIdentifier: ConnectionState]>([:])
    private let stopping = Atomic<Bool>(false)
    /// Wakes the reaper early (to stop), and tells `stopReaper` it has gone.
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private var reaperRunning = false

    init(limit: Int, deadlineSeconds: Double) {
        self.limit = limit
        hardLimit = limit + max(64, limit / 4)
        deadlineNanos = UInt64(deadlineSeconds * 1e9)
    }

    /// A connection past the hard limit is refused before MHD sets it up.
    var acceptsMore: Bool { open.load(ordering: .relaxed) < hardLimit }

    func started(fd: Int32) -> ConnectionState {
        let count = open.add(1, ordering: .relaxed).newValue
        let state = ConnectionState(fd: fd, overLimit: count > limit, now: DispatchTime.now().uptimeNanoseconds)
        all.withLock { $0[ObjectIdentifier(state)] = state }
        return state
    }

    /// MHD calls this before it closes the socket, so the reaper never shuts down a reused fd.
    func closed(_ state: ConnectionState) {
        all.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(state)) }
        open.subtract(1, ordering: .relaxed)
    }

    func startReaper() {
        let thread = Thread { [self] in
            while !stopping.load(ordering: .relaxed) {
                _ = wake.wait(timeout: .now() + .milliseconds(100))
                reap(now: DispatchTime.now().uptimeNanoseconds)
            }
            finished.signal()
        }
        thread.name = "lstm-serve.deadline"
        reaperRunning = true
        thread.start()
    }

    /// Stops the reaper and waits until its thread has gone.
    func stopReaper() {
        guard reaperRunning else { return }
        reaperRunning = false
        stopping.store(true, ordering: .relaxed)
        wake.signal()
        finished.wait()
    }

    /// Shuts down every connection whose request has not fully arrived within the deadline
    /// (over-limit ones get a second), and every idle one whose client has closed its side:
    /// libmicrohttpd 0.9.75 does not notice that end of input while it waits for a request line
    /// or a chunked body, and would hold the socket in CLOSE-WAIT until the deadline. MHD then
    /// sees the socket fail and closes it itself.
    func reap(now: UInt64) {
        all.withLock { states in
            var idle: [ConnectionState] = []
            for state in states.values where !state.cut && !state.busy.load(ordering: .acquiring) {
                let allowed = state.overLimit ? min(deadlineNanos, 1_000_000_000) : deadlineNanos
                let start = state.phaseStart.load(ordering: .relaxed)
                let age = now > start ? now - start : 0
                if age > allowed {
                    state.cut = true
                    shutdown(state.fd, Int32(SHUT_RDWR))
                } else if age > 500_000_000 {
                    idle.append(state)
                }
            }
            guard !idle.isEmpty else { return }
            // one poll for all: which peers have shut down their writing side (POLLRDHUP)
            let rdhup: Int16 = 0x2000
            var fds = idle.map { pollfd(fd: $0.fd, events: rdhup, revents: 0) }
            guard poll(&fds, nfds_t(fds.count), 0) > 0 else { return }
            for (state, p) in zip(idle, fds) where p.revents & (rdhup | Int16(POLLHUP) | Int16(POLLERR)) != 0 {
                state.cut = true
                shutdown(state.fd, Int32(SHUT_RDWR))
            }
        }
    }
}
