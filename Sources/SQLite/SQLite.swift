internal import CSQLite

/// An error from SQLite: its result code and message.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    /// SQLite's primary result code (`SQLITE_FULL`, `SQLITE_CORRUPT`, ...).
    public let code: Int32
    public let message: String

    /// The medium is full (or a write failed at the OS: `SQLITE_IOERR`).
    public var isFull: Bool { code == SQLITE_FULL || code == SQLITE_IOERR }
    /// The file is not a database, or one that is damaged.
    public var isCorrupt: Bool { code == SQLITE_CORRUPT || code == SQLITE_NOTADB }
    /// Another connection (another process) holds the lock.
    public var isBusy: Bool { code == SQLITE_BUSY || code == SQLITE_LOCKED }

    public var description: String { message }

    init(code: Int32, database: OpaquePointer?) {
        self.code = code & 0xFF
        let text = database.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(code))
        message = text
    }

    public init(code: Int32, message: String) {
        self.code = code
        self.message = message
    }
}

/// A connection to one SQLite database file, used from one thread at a time (it is opened
/// without SQLite's own mutex). The corresponding C type is `sqlite3`.
public final class SQLiteDatabase {
    let handle: OpaquePointer

    /// Opens (and, with `create`, makes) the database at `path`.
    /// The corresponding C function is `sqlite3_open_v2`.
    public init(path: String, create: Bool = true) throws(SQLiteError) {
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let error = SQLiteError(code: rc, database: db)
            sqlite3_close_v2(db)
            throw error
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
    }

    deinit { sqlite3_close_v2(handle) }

    /// Runs one or more statements that return no rows. The corresponding C function is `sqlite3_exec`.
    public func execute(_ sql: String) throws(SQLiteError) {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw SQLiteError(code: rc, database: handle) }
    }

    public func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        try SQLiteStatement(self, sql)
    }

    /// The first column of the first row of `sql`, as text (nil when there is no row or it is NULL).
    public func scalar(_ sql: String) throws(SQLiteError) -> String? {
        let statement = try prepare(sql)
        guard try statement.step() else { return nil }
        return statement.isNull(0) ? nil : statement.text(0)
    }

    /// Rows changed by the last statement. The corresponding C function is `sqlite3_changes`.
    public var changes: Int { Int(sqlite3_changes(handle)) }
}

/// A prepared statement, reused by binding new values after `reset`.
/// The corresponding C type is `sqlite3_stmt`.
public final class SQLiteStatement {
    private let database: SQLiteDatabase  // finalized before its database closes
    private let handle: OpaquePointer

    init(_ database: SQLiteDatabase, _ sql: String) throws(SQLiteError) {
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v2(database.handle, sql, -1, &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw SQLiteError(code: rc, database: database.handle) }
        self.database = database
        handle = statement
    }

    deinit { sqlite3_finalize(handle) }

    private func check(_ rc: Int32) throws(SQLiteError) {
        guard rc == SQLITE_OK else { throw SQLiteError(code: rc, database: database.handle) }
    }

    /// Parameters are numbered from 1, as in SQL's `?1`.
    public func bind(_ index: Int, _ value: Int) throws(SQLiteError) {
        try check(sqlite3_bind_int64(handle, Int32(index), Int64(value)))
    }

    public func bind(_ index: Int, _ value: Double) throws(SQLiteError) {
        try check(sqlite3_bind_double(handle, Int32(index), value))
    }

    public func bind(_ index: Int, _ value: String) throws(SQLiteError) {
        try check(sqlite3_bind_text(handle, Int32(index), value, -1, CSQLite_transient()))
    }

    /// The bytes are copied by SQLite before this returns.
    public func bind(_ index: Int, bytes: UnsafeRawBufferPointer) throws(SQLiteError) {
        try check(sqlite3_bind_blob64(handle, Int32(index), bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1), UInt64(bytes.count), CSQLite_transient()))
    }

    /// Runs to the next row: true when there is one, false when done.
    /// The corresponding C function is `sqlite3_step`.
    @discardableResult
    public func step() throws(SQLiteError) -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        let error = SQLiteError(code: rc, database: database.handle)
        sqlite3_reset(handle)
        throw error
    }

    /// Makes the statement ready to run again, its bindings cleared.
    public func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    public func isNull(_ column: Int) -> Bool { sqlite3_column_type(handle, Int32(column)) == SQLITE_NULL }

    public func int(_ column: Int) -> Int { Int(sqlite3_column_int64(handle, Int32(column))) }

    public func double(_ column: Int) -> Double { sqlite3_column_double(handle, Int32(column)) }

    public func text(_ column: Int) -> String {
        guard let p = sqlite3_column_text(handle, Int32(column)) else { return "" }
        let n = Int(sqlite3_column_bytes(handle, Int32(column)))
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }

    /// Calls `body` with a blob column's bytes, valid only inside it.
    public func withBytes<R>(_ column: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let p = sqlite3_column_blob(handle, Int32(column))
        let n = Int(sqlite3_column_bytes(handle, Int32(column)))
        return body(UnsafeRawBufferPointer(start: p, count: p == nil ? 0 : n))
    }
}
