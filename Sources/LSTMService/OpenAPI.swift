/// The OpenAPI 3.1 description of every route (Sources/LSTMService/openapi.json, compiled in),
/// served at `GET /openapi.json`.
enum OpenAPI {
    static let document: [UInt8] = PackageResources.openapi_json
}
