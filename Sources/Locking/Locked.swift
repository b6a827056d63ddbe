#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value behind a pthread mutex: `withLock` is the only way to it.
///
/// Why not `Synchronization.Mutex`: on Linux it waits on a futex that ThreadSanitizer cannot
/// see, so TSan reported every access through one as a race (a ten-line program with a
/// `Mutex<[Int]>` and `concurrentPerform` does the same), which hid real races behind false
/// ones. TSan intercepts pthread mutexes, so with this lock its reports mean something again.
public final class Locked<Value>: @unchecked Sendable {
    // Inlinable so that each caller's `withLock` is specialized for its value and closure: an
    // unspecialized generic call builds type metadata at run time, on every request's path.
    @usableFromInline var value: Value
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let result = pthread_mutex_init(mutex, nil)
        precondition(result == 0, "pthread_mutex_init failed: \(result)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with the value while holding the lock.
    @inlinable
    public func withLock<T, E: Error>(_ body: (inout Value) throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }

    /// Runs `body` with the value if the lock is free at once; nil (and `body` not run) when
    /// another thread holds it.
    @inlinable
    public func tryWithLock<T, E: Error>(_ body: (inout Value) throws(E) -> T) throws(E) -> T? {
        guard pthread_mutex_trylock(mutex) == 0 else { return nil }
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
