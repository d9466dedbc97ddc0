//! Unit tests of the SCIM service over an in-memory directory ([`memory`]), no sockets: each
//! drives [`ScimService::handle`] with a [`ScimRequest`] and checks the answer and what the
//! directory holds afterwards.

mod memory;
mod protocol;
mod users;

use crate::auth::{ApiKey, Keyring, Principal, Tenant};
use crate::scim::discovery::Restrictions;
use crate::scim::message::{ScimRequest, ScimResponse};
use crate::service::{Operation, ScimService};
use crate::telemetry::Telemetry;
use http::Method;
use memory::MemoryDirectory;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "test-key-acme";
const TENANT: &str = "acme";
const BASE: &str = "https://gw.test/scim/v2";
const NOW: &str = "2026-12-04T10:00:00Z";
const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Failed authentications an address may make before it is answered 429.
const MAX_FAILURES: u32 = 3;

/// A service over a memory directory, and that directory.
struct Fixture {
    service: ScimService,
    directory: Arc<MemoryDirectory>,
}

fn fixture() -> Fixture {
    fixture_with(Restrictions::default())
}

fn fixture_with(restrictions: Restrictions) -> Fixture {
    let directory = Arc::new(MemoryDirectory::with_restrictions(restrictions));
    let tenant = Arc::new(Tenant {
        name: TENANT.into(),
        backend_name: "acme-team".into(),
    });
    let telemetry =
        Arc::new(Telemetry::new(None, MAX_FAILURES, Duration::from_secs(60)).expect("telemetry"));
    let keyring = Keyring::new(vec![ApiKey::from_secret(tenant, KEY)]);
    let service = ScimService::new(directory.clone(), keyring, 50, telemetry);
    Fixture { service, directory }
}

/// An authenticated request; `target` is the path after the base, with its query.
fn request(method: &str, target: &str, body: Option<&Value>) -> ScimRequest {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    ScimRequest {
        method: Method::from_bytes(method.as_bytes()).expect("method"),
        path: path.into(),
        query: query.into(),
        authorization: vec![format!("Bearer {KEY}").into_bytes()],
        content_type: body.map(|_| "application/scim+json".into()),
        if_match: None,
        client: None,
        base_url: BASE.into(),
        body: body.map(|b| b.to_string().into()).unwrap_or_default(),
    }
}

impl Fixture {
    /// Routes and answers `req` as the proxy does.
    async fn handle(&self, req: &ScimRequest) -> (ScimResponse, Option<Principal>) {
        let operation = Operation::route(&req.method, &req.path);
        self.service.handle(req, &operation, NOW).await
    }

    async fn send(&self, req: ScimRequest) -> ScimResponse {
        self.handle(&req).await.0
    }

    async fn call(&self, method: &str, target: &str, body: Option<&Value>) -> ScimResponse {
        self.send(request(method, target, body)).await
    }

    /// Creates a user through the service; answers its id.
    async fn create(&self, user_name: &str) -> String {
        let r = self.call("POST", "/Users", Some(&user(user_name))).await;
        assert_eq!(r.status, 201, "{}", text(&r));
        json_of(&r)["id"].as_str().expect("id").to_string()
    }
}

/// A User body Entra might send.
fn user(user_name: &str) -> Value {
    json!({
        "schemas": [CORE],
        "userName": user_name,
        "externalId": format!("ext-{user_name}"),
        "active": true,
        "name": {"givenName": "Alice", "familyName": "Smith"},
        "emails": [{"type": "work", "value": user_name, "primary": true}],
    })
}

fn patch_body(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

fn text(r: &ScimResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn json_of(r: &ScimResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", text(r)))
}

fn header<'a>(r: &'a ScimResponse, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Checks `r` is an RFC 7644 error with `status` (and `scim_type`, when given); answers its detail.
fn assert_error(r: &ScimResponse, status: u16, scim_type: Option<&str>) -> String {
    assert_eq!(r.status, status, "{}", text(r));
    let body = json_of(r);
    assert_eq!(body["schemas"], json!([ERROR]), "{body}");
    assert_eq!(body["status"], json!(status.to_string()), "{body}");
    assert_eq!(body["scimType"].as_str(), scim_type, "{body}");
    body["detail"].as_str().expect("detail").to_string()
}
