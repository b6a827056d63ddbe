import Foundation
import SQLite
import Testing

/// The wrapper against a real database file: values round-trip, statements are reused, and a
/// file that is not a database says so by its error.
@Suite struct SQLiteTests {
    static func temporaryPath(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sqlite-tests-\(getpid())-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name).path
    }

    @Test func valuesRoundTripThroughAReusedStatement() throws {
        let db = try SQLiteDatabase(path: Self.temporaryPath("a.db"))
        try db.execute("CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER, x REAL, b BLOB) WITHOUT ROWID")
        let insert = try db.prepare("INSERT INTO t VALUES (?1, ?2, ?3, ?4)")
        let payloads: [[UInt8]] = [[], [0, 1, 2, 255], Array(repeating: 7, count: 70_000)]
        for (k, bytes) in payloads.enumerated() {
            insert.reset()
            try insert.bind(1, "id-\(k)-é")
            try insert.bind(2, (1 << 53) - k)
            try insert.bind(3, 0.1 * Double(k))
            try bytes.withUnsafeBytes { try insert.bind(4, bytes: $0) }
            #expect(try insert.step() == false)
        }
        let select = try db.prepare("SELECT id, n, x, b FROM t ORDER BY n DESC")
        var k = 0
        while try select.step() {
            #expect(select.text(0) == "id-\(k)-é")
            #expect(select.int(1) == (1 << 53) - k)
            #expect(select.double(2) == 0.1 * Double(k))
            #expect(select.withBytes(3) { Array($0) } == payloads[k])
            k += 1
        }
        #expect(k == 3)
        #expect(try db.scalar("SELECT count(*) FROM t") == "3")
    }

    @Test func aConstraintViolationIsAnErrorWithItsMessage() throws {
        let db = try SQLiteDatabase(path: Self.temporaryPath("b.db"))
        try db.execute("CREATE TABLE t (id TEXT PRIMARY KEY)")
        try db.execute("INSERT INTO t VALUES ('a')")
        #expect(throws: SQLiteError.self) { try db.execute("INSERT INTO t VALUES ('a')") }
        do {
            try db.execute("INSERT INTO t VALUES ('a')")
        } catch {
            #expect(error.message.contains("UNIQUE constraint failed"))
            #expect(!error.isCorrupt && !error.isFull)
        }
    }

    @Test func aFileThatIsNotADatabaseIsCorrupt() throws {
        let path = Self.temporaryPath("c.db")
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: path))
        let db = try SQLiteDatabase(path: path)  // SQLite reads the header on first use
        do {
            _ = try db.scalar("PRAGMA application_id")
            Issue.record("a file of 'A's read as a database")
        } catch {
            #expect(error.isCorrupt, "\(error.code): \(error.message)")
        }
    }
}
