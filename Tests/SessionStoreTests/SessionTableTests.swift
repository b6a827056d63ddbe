import Foundation
import ModelFormat
import ModelRuntime
@testable import SessionStore
import TestSupport
import Testing

/// The session table's order of use, its bounded record of removed ids, and what a refused
/// step leaves behind.
@Suite struct SessionTableTests {
    static let state: RecurrentStateFactory = RecurrentStateFactory()

    func session(_ id: String, at t: Double) -> SessionTable.Session {
        SessionTable.Session(id: SessionKey(id), model: Self.state.entry, step: 0, created: t, lastUsed: t, row: 0)
    }

    func order(_ table: SessionTable) -> [SessionKey] {
        var copy = table, ids: [SessionKey] = []
        while let s = copy.oldest { ids.append(copy[s].id); copy.remove(s, .deleted) }
        return ids
    }

    func keys(_ ids: String...) -> [SessionKey] { ids.map(SessionKey.init) }

    @Test func serverMadeIdsAreTheirBitsAndOtherNamesAreHashed() {
        let id = MemoryDriver.newID()
        #expect(SessionKey.isServerMade(id) && SessionKey(id).hex == id)
        #expect(!SessionKey.isServerMade(id.uppercased()) && SessionKey(id.uppercased()) != SessionKey(id))
        #expect(!SessionKey.isServerMade("seq:11:temperature:n1") && SessionKey("seq:11:temperature:n1") == SessionKey("seq:11:temperature:n1"))
        #expect(SessionKey("seq:11:temperature:n1") != SessionKey("seq:11:temperature:n2"))
        #expect(!SessionKey.isServerMade(String(id.dropLast()) + "g"))
    }

    @Test func theHeadIsAlwaysTheLeastRecentlyUsed() {
        var t = SessionTable()
        for (k, id) in ["a", "b", "c", "d"].enumerated() { t.insert(session(id, at: Double(k))) }
        #expect(order(t) == keys("a", "b", "c", "d"))
        t.touch(t.slot("b")!, at: 10)
        t.touch(t.slot("a")!, at: 11)
        #expect(order(t) == keys("c", "d", "b", "a"))
        t.remove(t.slot("d")!, .evicted)
        t.insert(session("e", at: 12))  // reuses d's slot
        #expect(order(t) == keys("c", "b", "a", "e") && t.count == 4)
        #expect(t[t.oldest!].lastUsed == 2 && t.whyGone("d") == .evicted && t.whyGone("a") == nil)
    }

    @Test func removedIdsAreRememberedUpToTheCapacityAndNoMore() {
        var t = SessionTable(goneCapacity: 8)
        for k in 0..<100 {
            t.insert(session("s\(k)", at: Double(k)))
            t.remove(t.slot("s\(k)")!, k % 2 == 0 ? .deleted : .expired)
        }
        #expect((0..<92).allSatisfy { t.whyGone("s\($0)") == nil })
        #expect(t.whyGone("s99") == .expired && t.whyGone("s98") == .deleted && t.whyGone("s92") == .deleted)
        #expect(t.count == 0 && t.oldest == nil)
    }

    @Test func aMostlyEmptyTableIsRebuiltSmallInTheSameOrder() {
        var t = SessionTable()
        for k in 0..<5000 { t.insert(session("s\(k)", at: Double(k))) }
        for k in 0..<4900 { t.remove(t.slot("s\(k)")!, .expired) }
        t.touch(t.slot("s4950")!, at: 9999)
        t.compactIfSparse()
        #expect(t.count == 100 && t.whyGone("s4899") == .expired)
        let ids = order(t)
        #expect(ids.first == SessionKey("s4900") && ids.last == SessionKey("s4950") && ids.count == 100)
    }
}

/// A model version for a one-layer LSTM of hidden 3 (the table does not look inside it).
struct RecurrentStateFactory: Sendable {
    let entry = ModelRegistry.Entry(model: try! Model.load(path: TestModels.write(TestModels.lstm())))
}

extension SessionTable {
    func slot(_ id: String) -> Int? { slot(SessionKey(id)) }
    func whyGone(_ id: String) -> Gone? { whyGone(SessionKey(id)) }
}
