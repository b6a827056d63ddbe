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
    /// The reaper's last look: `phaseStart` then, and whether MHD had work waiting on the
    /// socket (unread bytes, or the peer gone).
    var seenPhase: UInt64 = 0
    var seenWaiting = false
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
    private let alarm = DispatchSemaphore(value: 0)
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

    /// Starts the reaper; `wake` makes every MHD worker run its loop once (see `reap`).
    func startReaper(wake: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            while !stopping.load(ordering: .relaxed) {
                _ = alarm.wait(timeout: .now() + .milliseconds(100))
                if reap(now: DispatchTime.now().uptimeNanoseconds) { wake() }
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
        alarm.signal()
        finished.wait()
    }

    /// Shuts down every connection whose request has not fully arrived within the deadline
    /// (over-limit ones get a second), and every idle one whose client has closed its side:
    /// libmicrohttpd 0.9.75 does not notice that end of input while it waits for a request line
    /// or a chunked body, and would hold the socket in CLOSE-WAIT until the deadline. MHD then
    /// sees the socket fail and closes it itself.
    ///
    /// Returns true when MHD's workers must be woken: a connection not with the handler has had
    /// work waiting for MHD (bytes to read, the peer gone, or our shutdown) on two looks in a
    /// row with no request finished between them. That is MHD's epoll loop stalled after a
    /// full batch of 128 events (see `CMicroHTTPD_wake_workers`): without the wake, 128
    /// requests that arrive together wait for the connection timeout.
    func reap(now: UInt64) -> Bool {
        all.withLock { states in
            var watched: [ConnectionState] = []
            watched.reserveCapacity(states.count)
            for state in states.values where !state.busy.load(ordering: .acquiring) {
                let allowed = state.overLimit ? min(deadlineNanos, 1_000_000_000) : deadlineNanos
                let start = state.phaseStart.load(ordering: .relaxed)
                if !state.cut, now > start, now - start > allowed {
                    state.cut = true
                    shutdown(state.fd, Int32(SHUT_RDWR))
                }
                watched.append(state)
            }
            guard !watched.isEmpty else { return false }
            // one poll for all: unread input, and peers that have shut down their side (POLLRDHUP)
            let rdhup: Int16 = 0x2000, gone = rdhup | Int16(POLLHUP) | Int16(POLLERR)
            var fds = watched.map { pollfd(fd: $0.fd, events: Int16(POLLIN) | rdhup, revents: 0) }
            guard poll(&fds, nfds_t(fds.count), 0) >= 0 else { return false }
            var stalled = false
            for (state, p) in zip(watched, fds) {
                let phase = state.phaseStart.load(ordering: .relaxed)
                let waiting = p.revents != 0
                if waiting, state.seenWaiting, phase == state.seenPhase { stalled = true }
                (state.seenWaiting, state.seenPhase) = (waiting, phase)
                if !state.cut, p.revents & gone != 0, now > phase, now - phase > 500_000_000 {
                    state.cut = true
                    shutdown(state.fd, Int32(SHUT_RDWR))
                }
            }
            return stalled
        }
    }
}
