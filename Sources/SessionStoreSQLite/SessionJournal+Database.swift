import Foundation
import SQLite
import SessionStore

extension SessionJournal {
    /// The session table in SQLite (WAL mode), which the checkpoints write: one connection
    /// and its statements, closed together (the statements hold the connection, so it closes
    /// after them, and its lock on the file goes with it).
    final class Database {
        static let columns = "id, model, version, step, created, last_used, layout, state, fingerprint"
        let path: String
        private let db: SQLiteDatabase
        private let upsert: SQLiteStatement, update: SQLiteStatement, remove: SQLiteStatement, select: SQLiteStatement

        /// Opens (or makes) the store at `path`, taking it for this process alone. Throws one
        /// clear error for a file that is not a session store, a damaged one, one another
        /// process holds, or one that cannot be written. `beforeWriting` runs once the file is
        /// held and checked, before anything is written to it (a refusal there leaves it as it was).
        init(path: String, sync: Sync, beforeWriting: () throws(StoreError) -> Void = {}) throws(StoreError) {
            self.path = path
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                do {
                    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                } catch {
                    throw StoreError("cannot make the session store's directory '\(directory)': \(error.localizedDescription)")
                }
            }
            func fail(_ e: SQLiteError) -> StoreError {
                if e.isCorrupt { return StoreError("'\(path)' is damaged or is not an lstm-serve session store (\(e.message)); move it aside to start with no sessions") }
                if e.isBusy { return StoreError("'\(path)' is held by another process (another lstm-serve?); each server needs a session store of its own") }
                return StoreError("cannot open the session store '\(path)': \(e.message)")
            }
            do {
                let db = try SQLiteDatabase(path: path)
                try db.execute("PRAGMA locking_mode = EXCLUSIVE")
                let app = Int(try db.scalar("PRAGMA application_id") ?? "0") ?? 0
                let tables = Int(try db.scalar("SELECT count(*) FROM sqlite_master") ?? "0") ?? 0
                if app != SessionJournal.applicationID, tables > 0 || app != 0 {
                    throw StoreError("'\(path)' is an SQLite database of something else (application_id \(app), \(tables) schema objects), not an lstm-serve session store; give session_store another path")
                }
                let check = try db.scalar("PRAGMA quick_check") ?? ""
                guard check == "ok" else { throw StoreError("the session store '\(path)' is damaged (\(check.prefix(200))); move it aside to start with no sessions") }
                try beforeWriting()
                if app == SessionJournal.applicationID {
                    // ours, but its table is gone: a file cut short (never made anew over it)
                    guard try db.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'sessions'") == "1" else {
                        throw StoreError("the session store '\(path)' is damaged (its sessions table is missing; the file may be cut short); move it aside to start with no sessions")
                    }
                    let version = Int(try db.scalar("PRAGMA user_version") ?? "0") ?? 0
                    if version == 1 {
                        try db.execute("BEGIN EXCLUSIVE; ALTER TABLE sessions ADD COLUMN fingerprint TEXT NOT NULL DEFAULT ''; PRAGMA user_version = 2; COMMIT;")
                    } else if version != SessionJournal.schemaVersion {
                        throw StoreError("the session store '\(path)' has schema version \(version); this lstm-serve reads version \(SessionJournal.schemaVersion)")
                    }
                }
                try db.execute("PRAGMA journal_mode = WAL")
                try db.execute("PRAGMA synchronous = \(sync == .full ? "FULL" : "NORMAL")")
                try db.execute("""
                    BEGIN EXCLUSIVE;
                    CREATE TABLE IF NOT EXISTS sessions (
                        id TEXT PRIMARY KEY, model TEXT NOT NULL, version TEXT NOT NULL, step INTEGER NOT NULL,
                        created REAL NOT NULL, last_used REAL NOT NULL, layout TEXT NOT NULL, state BLOB NOT NULL,
                        fingerprint TEXT NOT NULL DEFAULT ''
                    ) WITHOUT ROWID;
                    PRAGMA application_id = \(SessionJournal.applicationID);
                    PRAGMA user_version = \(SessionJournal.schemaVersion);
                    COMMIT;
                    """)
                // an update in place when the row is there (REPLACE would delete and insert it)
                let upsert = try db.prepare("""
                    INSERT INTO sessions VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (id) DO UPDATE SET
                    model = excluded.model, version = excluded.version, step = excluded.step, created = excluded.created,
                    last_used = excluded.last_used, layout = excluded.layout, state = excluded.state, fingerprint = excluded.fingerprint
                    """)
                (self.db, self.upsert) = (db, upsert)
                update = try db.prepare("UPDATE sessions SET step = ?2, last_used = ?3, state = ?4 WHERE id = ?1")
                remove = try db.prepare("DELETE FROM sessions WHERE id = ?1")
                select = try db.prepare("SELECT \(Self.columns) FROM sessions WHERE id = ?1")
            } catch let e as StoreError {
                throw e
            } catch let e as SQLiteError {
                throw fail(e)
            } catch {
                throw StoreError("cannot open the session store '\(path)': \(error)")
            }
        }

        /// Every stored session.
        func loadAll() throws(StoreError) -> [Row] {
            do {
                let all = try db.prepare("SELECT \(Self.columns) FROM sessions")
                var rows: [Row] = []
                while try all.step() { rows.append(Self.row(all)) }
                return rows
            } catch {
                throw StoreError("cannot read the session store '\(path)': \(error.message)")
            }
        }

        private static func row(_ s: SQLiteStatement) -> Row {
            Row(id: s.text(0), model: s.text(1), version: s.text(2), fingerprint: s.text(8), step: s.int(3), created: s.double(4), lastUsed: s.double(5),
                layout: s.text(6), state: s.withBytes(7) { Array($0) })
        }

        /// The stored row of `id`, nil when there is none.
        func stored(_ id: String) throws(SQLiteError) -> Row? {
            select.reset()
            try select.bind(1, id)
            return try select.step() ? Self.row(select) : nil
        }

        /// Writes a log in one transaction: each session's last word only, decoded one at a
        /// time.
        func apply(_ log: StepLog.Mapped, file: String) throws(StoreError) {
            do {
                try db.execute("BEGIN")
                for (id, p) in StepLog.plan(log) {
                    switch log.entry(p.last) {
                    case let .put(row):
                        try put(row)
                    case let .step(_, step, lastUsed, state):
                        if let made = p.put, case let .put(row) = log.entry(made) {
                            try put(row.stepped(step: step, lastUsed: lastUsed, state: state))
                        } else {
                            update.reset()
                            try update.bind(1, id)
                            try update.bind(2, step)
                            try update.bind(3, lastUsed)
                            try state.withUnsafeBytes { try update.bind(4, bytes: $0) }
                            try update.step()
                        }
                    case .delete:
                        remove.reset()
                        try remove.bind(1, id)
                        try remove.step()
                    }
                }
                try db.execute("COMMIT")
            } catch {
                try? db.execute("ROLLBACK")
                throw StoreError("cannot move the step log '\(file)' into the session store '\(path)': \(error)")
            }
        }

        private func put(_ row: Row) throws {
            upsert.reset()
            try upsert.bind(1, row.id)
            try upsert.bind(2, row.model)
            try upsert.bind(3, row.version)
            try upsert.bind(4, row.step)
            try upsert.bind(5, row.created)
            try upsert.bind(6, row.lastUsed)
            try upsert.bind(7, row.layout)
            try row.state.withUnsafeBytes { try upsert.bind(8, bytes: $0) }
            try upsert.bind(9, row.fingerprint)
            try upsert.step()
        }

        /// Moves the WAL into the database file.
        func truncateWAL() throws(StoreError) {
            do { try db.execute("PRAGMA wal_checkpoint(TRUNCATE)") } catch { throw StoreError("cannot checkpoint the session store '\(path)': \(error.message)") }
        }
    }
}
