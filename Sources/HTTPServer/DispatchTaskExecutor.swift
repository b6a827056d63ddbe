import Dispatch

/// Runs the server's async work (and the default actors it calls) on a GCD queue instead of
/// Swift's cooperative pool, so code that blocks pool threads elsewhere in the process cannot
/// starve a suspended connection's answer.
public final class DispatchTaskExecutor: TaskExecutor, @unchecked Sendable {
    private let queue: DispatchQueue

    public init(label: String) {
        queue = DispatchQueue(label: label, attributes: .concurrent)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
