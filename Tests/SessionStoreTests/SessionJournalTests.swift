import Foundation
import Locking
import SessionStore
@testable import SessionStoreSQLite
import Testing

/// The durable store's step log and checkpoints: what is read back, what is refused, and a
/// store copied while it runs (as a crash leaves it) coming back whole.
@Suite struct SessionJournalTests {
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "lstm-journal-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    static func row(_ id: String, step: Int, fill: UInt8) -> SessionJournal.Row {
        SessionJournal.Row(id: id, model: "m", version: "1", fingerprint: "f", step: step, created: 1.5, lastUsed: 2.5 + Double(step),
                           layout: "lstm:2", state: [UInt8](repeating: fill, count: 16))
    }

    static func stepRecord(_ id: String, step: Int, fill: UInt8) -> [UInt8] {
        let state = [UInt8](repeating: fill, count: 16)
        return state.withUnsafeBytes { StepLog.stepRecord(id: id, step: step, lastUsed: 2.5 + Double(step), state: $0) }
    }

    /// Writes a log of `changes`; where its records end (zeros follow, to the allocated size).
    @discardableResult
    func write(_ path: String, _ changes: [SessionJournal.Change]) throws -> Int {
        var log = try StepLog(creating: path, sync: false)
        var bytes: [UInt8] = []
        for change in changes { StepLog.encode(change, into: &bytes) }
        #expect(log.append(&bytes, sync: false))
        log.close()
        return StepLog.header.count + bytes.count
    }

    func described(_ entries: [StepLog.Entry]) -> [String] {
        entries.map {
            switch $0 {
            case let .put(r): return "put \(r.id) \(r.step) \(r.state[0])"
            case let .step(id, step, lastUsed, state): return "step \(id) \(step) \(lastUsed) \(state[0])"
            case let .delete(id): return "delete \(id)"
            }
        }
    }

    @Test func aLogReadsBackWhatWasWrittenAndDropsOnlyARecordCutShortAtItsEnd() throws {
        let path = directory + "/a-steps"
        let end = try write(path, [.put(Self.row("a", step: 0, fill: 1)), .step(id: "a", record: Self.stepRecord("a", step: 1, fill: 2)),
                         .put(Self.row("b", step: 0, fill: 3)), .delete("b")])
        let (entries, dropped) = try #require(try StepLog.read(path))
        #expect(described(entries) == ["put a 0 1", "step a 1 3.5 2", "put b 0 3", "delete b"])
        #expect(dropped == 0)
        guard case let .put(folded)? = StepLog.fold(entries)["a"] else { Issue.record("a folds to a put"); return }
        #expect(folded.step == 1 && folded.state == [UInt8](repeating: 2, count: 16) && folded.created == 1.5)
        if case .delete? = StepLog.fold(entries)["b"] {} else { Issue.record("b folds to a delete") }

        let clean = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(clean.count == StepLog.chunk && clean[end...].allSatisfy { $0 == 0 })

        // a write cut short by a power cut: the last record loses its end (18 bytes, the
        // last of them the id's), zeros after it
        var data = clean
        data.replaceSubrange(end..<(end + 18), with: Self.stepRecord("a", step: 2, fill: 4).prefix(18))
        try data.write(to: URL(fileURLWithPath: path))
        let torn = try #require(try StepLog.read(path))
        #expect(torn.entries.count == 4 && torn.dropped == 18)

        // a group whose copy a kill interrupted: all but its first length (stored last)
        data = clean
        data.replaceSubrange((end + 4)..<(end + 18), with: Self.stepRecord("a", step: 2, fill: 4)[4..<18])
        try data.write(to: URL(fileURLWithPath: path))
        let unfinished = try #require(try StepLog.read(path))
        #expect(unfinished.entries.count == 4 && unfinished.dropped == 18)

        // a bad byte in a record with more after it is damage, said, not skipped
        data = clean
        data[StepLog.header.count + StepLog.recordHead + 3] ^= 0xFF
        try data.write(to: URL(fileURLWithPath: path))
        #expect { try StepLog.read(path) } throws: { "\($0)".contains("is damaged (a bad record at byte 16") }

        // a log being made when the kill came: its space allocated, its header not yet whole
        var making = Data(count: StepLog.chunk)
        try making.write(to: URL(fileURLWithPath: path))
        #expect(try StepLog.read(path)?.entries.isEmpty == true)
        making.replaceSubrange(4..<16, with: StepLog.header[4...])
        try making.write(to: URL(fileURLWithPath: path))
        #expect(try StepLog.read(path)?.entries.isEmpty == true)
        making[100] = 1  // but zeros with something else in them are no log of ours
        try making.write(to: URL(fileURLWithPath: path))
        #expect { try StepLog.read(path) } throws: { "\($0)".contains("is not an lstm-serve step log") }

        try Data("these are notes, not a step log".utf8).write(to: URL(fileURLWithPath: path))
        #expect { try StepLog.read(path) } throws: { "\($0)".contains("is not an lstm-serve step log") }
        #expect(try StepLog.read(directory + "/none") == nil)
    }

    @Test func aStoreCopiedWhileItRunsComesBackWithEveryWrittenStepThroughItsCheckpoints() throws {
        let path = directory + "/sessions.db"
        let journal = try SessionJournal(path: path, sync: .process, checkpointBytes: 4096)
        let events = CountedEvents()
        journal.events = events
        journal.start()
        var last: [String: Int] = [:]
        for k in 0..<8 { journal.append(.put(Self.row("s\(k)", step: 0, fill: 0)), wait: false); last["s\(k)"] = 0 }
        for n in 1...60 {
            for k in 0..<8 where (k + n) % 3 != 0 {
                let ticket = journal.append(.step(id: "s\(k)", record: Self.stepRecord("s\(k)", step: n, fill: UInt8(n))), driven: true)!
                journal.drive(ticket)
                #expect(ticket.outcome.map { if case .success = $0 { true } else { false } } == true)
                last["s\(k)"] = n
            }
        }
        journal.append(.delete("s7"), wait: false)
        last["s7"] = nil
        // written and checkpointed at least once (each pass writes ~1.3 KB; the log turns at 4 KB)
        let flushed = journal.append(.cleared(""))!
        while !flushed.isDone { usleep(1000) }
        // the checkpoint thread runs on its own: wait for one, and for none to be under way
        for _ in 0..<500 where events.checkpoints == 0 || FileManager.default.fileExists(atPath: path + "-steps.old") { usleep(10_000) }
        #expect(events.checkpoints >= 1)
        let copy = directory + "/copy.db"
        for suffix in ["", "-wal", "-steps", "-steps.old"] where FileManager.default.fileExists(atPath: path + suffix) {
            try FileManager.default.copyItem(atPath: path + suffix, toPath: copy + suffix)
        }
        // the database file alone already holds checkpointed steps
        let checkpointed = try SessionJournal.Database(path: copy, sync: .process).loadAll()
        #expect(checkpointed.count >= 7 && checkpointed.contains { $0.step > 0 }, "\(checkpointed.map(\.step))")

        let back = try SessionJournal(path: copy, sync: .process).loadAll()
        #expect(Dictionary(uniqueKeysWithValues: back.map { ($0.id, $0.step) }) == last)
        for row in back { #expect(row.state == [UInt8](repeating: UInt8(row.step), count: 16) && row.lastUsed == 2.5 + Double(row.step) && row.model == "m") }
        journal.close()
        // a drain leaves the database file holding everything, and no log beside it
        #expect(!FileManager.default.fileExists(atPath: path + "-steps") && !FileManager.default.fileExists(atPath: path + "-steps.old"))
        let drained = try SessionJournal.Database(path: path, sync: .process).loadAll()
        #expect(Dictionary(uniqueKeysWithValues: drained.map { ($0.id, $0.step) }) == last)
    }

    /// A checkpoint renames the log to `-steps.old`, begins a new one, applies the old one in
    /// one transaction and removes it: a kill between any two of those leaves files that come
    /// back to the same sessions.
    @Test func aKillAtAnyPointOfACheckpointLeavesFilesThatComeBackWhole() throws {
        let older: [SessionJournal.Change] = [.put(Self.row("a", step: 0, fill: 0)), .step(id: "a", record: Self.stepRecord("a", step: 1, fill: 1)),
                                               .put(Self.row("b", step: 0, fill: 0)), .put(Self.row("c", step: 0, fill: 0))]
        let newer: [SessionJournal.Change] = [.step(id: "a", record: Self.stepRecord("a", step: 2, fill: 2)), .delete("b"),
                                               .step(id: "c", record: Self.stepRecord("c", step: 1, fill: 1))]
        let expected = ["a": 2, "c": 1]
        for (k, kill) in ["after the rename", "after the new log", "after the apply"].enumerated() {
            let path = directory + "/kill\(k).db"
            if kill == "after the rename" {
                try write(path + "-steps.old", older + newer)
            } else {
                try write(path + "-steps.old", older)
                try write(path + "-steps", newer)
            }
            if kill == "after the apply" {
                let old = try #require(try StepLog.Mapped(path + "-steps.old"))
                try SessionJournal.Database(path: path, sync: .process).apply(old, file: "old")
            }
            let back = try SessionJournal(path: path, sync: .process).loadAll()
            #expect(Dictionary(uniqueKeysWithValues: back.map { ($0.id, $0.step) }) == expected, "killed \(kill)")
            for row in back { #expect(row.state == [UInt8](repeating: UInt8(row.step), count: 16), "killed \(kill)") }
            #expect(!FileManager.default.fileExists(atPath: path + "-steps.old"), "killed \(kill): the old log is gone once applied")
        }
    }
}

/// The store's events, counted as they come.
final class CountedEvents: SessionEvents {
    private let counts = Locked([String: Int]())
    private func add(_ key: String, _ n: Int = 1) { counts.withLock { $0[key, default: 0] += n } }
    subscript(key: String) -> Int { counts.withLock { $0[key] ?? 0 } }
    var checkpoints: Int { self["checkpoint ok"] }

    func sessionCreated() { add("created") }
    func sessionsExpired(_ count: Int) { add("expired", count) }
    func sessionEvicted() { add("evicted") }
    func sessionDeleted() { add("deleted") }
    func storeCommitted(changes: Int, failed: Bool) { add(failed ? "commit failed" : "commit ok") }
    func storeCheckpointed(ok: Bool) { add(ok ? "checkpoint ok" : "checkpoint failed") }
}
