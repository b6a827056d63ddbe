import HTTPServer
@testable import LSTMService
import Testing

@Suite struct AccessPolicyTests {
    let policy = AccessPolicy(tokens: [("infer-token-0123456789", [.infer]), ("admin-token-0123456789", [.admin])])

    func request(_ authorization: String?) -> HTTPRequest {
        HTTPRequest(method: "GET", path: "/", contentType: nil, body: [], headers: authorization.map { ["authorization": $0] } ?? [:])
    }

    @Test func tokensMatchExactlyWhateverTheirLength() {
        #expect(policy.match(Array("infer-token-0123456789".utf8))?.scopes == [.infer])
        for wrong in ["", "infer-token-012345678", "infer-token-01234567890", "infer-token-0123456788", "admin-token-0123456789x"] {
            #expect(policy.match(Array(wrong.utf8)) == nil, "\(wrong)")
        }
    }

    @Test func aScopeIsNeededAndAdminHasEvery() {
        #expect(policy.refusal(request("Bearer infer-token-0123456789"), scope: .infer) == nil)
        #expect(policy.refusal(request("Bearer admin-token-0123456789"), scope: .infer) == nil)
        let refused = policy.refusal(request("Bearer infer-token-0123456789"), scope: .admin)
        #expect(refused?.status == 403 && refused?.headers.first?.1.contains("insufficient_scope") == true)
        #expect(policy.refusal(request(nil), scope: .infer)?.status == 401)
        #expect(policy.refusal(request("Basic abc"), scope: .infer)?.status == 401)
        #expect(policy.refusal(request(nil), scope: nil) == nil)
    }

    @Test func hostNamesLoseTheirPort() {
        #expect(AccessPolicy.hostName("Example.COM:8080") == "example.com")
        #expect(AccessPolicy.hostName("[::1]:8080") == "::1")
        #expect(AccessPolicy.hostName("::1") == "::1")
        #expect(AccessPolicy.hostName("localhost") == "localhost")
    }
}
