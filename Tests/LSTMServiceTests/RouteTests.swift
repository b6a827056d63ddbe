import FrontEnd
import JSON
@testable import LSTMService
import Testing

/// Routing on the path's bytes: patterns (the metrics labels) and the names and ids it slices out.
@Suite struct RouteTests {
    @Test func pathsMapToTheirRoutesAndNames() {
        func label(_ path: String) -> String? { Service.route(path)?.spec.pattern }
        #expect(label("/v1/predict") == "/v1/predict")
        #expect(label("/v1/predict/") == "/v1/predict")
        #expect(label("//v1//models") == "/v1/models")
        #expect(label("/v1/models/temperature/predict") == "/v1/models/{name}/predict")
        #expect(label("/v1/sessions/abc/step") == "/v1/sessions/{id}/step")
        #expect(label("/v1/sessions/abc/state") == "/v1/sessions/{id}/state")
        #expect(label("/v1/sessions/abc") == "/v1/sessions/{id}")
        #expect(label("/healthz") == "/healthz" && label("/readyz") == "/readyz" && label("/metrics") == "/metrics")
        #expect(label("/v1/sessions/abc/steps") == nil && label("/v2/predict") == nil && label("/") == nil && label("/v1/models/a/b/c") == nil)
        let step = Service.route("/v1/sessions/0123456789abcdef0123456789abcdef/step")
        #expect(step?.spec.pattern == "/v1/sessions/{id}/step" && step?.sessionID == "0123456789abcdef0123456789abcdef")
        let infer = Service.route("/v2/models/temperature/versions/1/infer")
        #expect(infer?.spec.pattern == "/v2/models/{name}/versions/{version}/infer" && infer?.endpoint.api == .v2 && infer?.parameter == "temperature" && infer?.second == "1")
        #expect(Service.route("/v2/models/temperature/infer")?.second == nil)
        let predict = Service.route("/v1/models/t%C3%A9/predict")
        #expect(predict?.spec.pattern == "/v1/models/{name}/predict" && predict?.parameter == "t%C3%A9" && predict?.sessionID == nil)
    }

    @Test func labelsAndAllowComeFromTheOneTable() throws {
        #expect(Service.routes.patterns.count == Set(Service.routes.patterns).count)
        var memory = Configuration()
        memory.sessionStore = "memory"
        #expect(try Service(configuration: memory).metrics.routes == Service.routes.patterns + ["unmatched"])
        #expect(Service.routes.routes[Service.route("/v1/sessions/x/state")!.index].allow == "GET, PUT")
        #expect(Service.routes.routes[Service.route("/healthz")!.index].allows("HEAD"))
    }

    /// The served OpenAPI document describes exactly the table's routes and methods.
    @Test func theOpenAPIDocumentHasEveryRouteAndNoOther() throws {
        let doc = try JSONDocument(bytes: OpenAPI.document).value
        let paths = try #require(doc["paths"])
        var described: [String: [String]] = [:]
        for path in paths.keys { described[path] = paths[path]!.keys.map { $0.uppercased() }.sorted() }
        var served: [String: [String]] = [:]
        for r in Service.routes.routes { served[r.pattern] = r.methods.sorted() }
        #expect(described == served)
        #expect(doc["openapi"]?.string == "3.1.0" && doc["info"]?["version"]?.string == LSTMServeVersion.string)
    }
}
