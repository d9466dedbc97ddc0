//! Tenant isolation: two tenants, each with its own key, whose workspaces in the lax backend
//! share user names and ids. Every SCIM operation (filters and paging included) stays inside the
//! key's tenant, a key gets `404` for ids only the other tenant has, and the guard reads the
//! managed flag of the caller's own tenant.

use super::harness::{assert_scim_error, enc, Gateway};
use super::lax::{self, Lax, UMBRELLA, WAYNE};
use serde_json::{json, Value};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// One tenant's view: the gateway with that tenant's key.
struct As<'a> {
    gw: &'a Gateway,
    token: &'a str,
}

impl As<'_> {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> super::http::Reply {
        self.gw.scim_as(self.token, method, path, body)
    }

    fn create(&self, user: &str, external_id: &str, title: &str) -> String {
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user, "externalId": external_id, "displayName": external_id,
            "title": title});
        let r = self.call("POST", "/Users", Some(&body));
        assert_eq!(r.status, 201, "{user}: {}", r.text());
        r.json()["id"].as_str().expect("id").to_string()
    }

    /// The externalIds of a list answer, in order, and its totalResults.
    fn list(&self, query: &str) -> (Vec<String>, u64) {
        let r = self.call("GET", &format!("/Users?{query}"), None);
        assert_eq!(r.status, 200, "{query}: {}", r.text());
        let body = r.json();
        let ext = body["Resources"]
            .as_array()
            .expect("Resources")
            .iter()
            .map(|u| u["externalId"].as_str().unwrap_or("-").to_string())
            .collect();
        (ext, body["totalResults"].as_u64().expect("totalResults"))
    }

    fn filter(&self, f: &str) -> (Vec<String>, u64) {
        self.list(&format!("filter={}", enc(f)))
    }

    fn external_id(&self, id: &str) -> Value {
        let r = self.call("GET", &format!("/Users/{id}"), None);
        assert_eq!(r.status, 200, "{id}: {}", r.text());
        r.json()["externalId"].clone()
    }
}

fn views(lax: &Lax) -> (As<'_>, As<'_>) {
    (
        As {
            gw: &lax.gw,
            token: &lax.gw.token,
        },
        As {
            gw: &lax.gw,
            token: &lax.wayne,
        },
    )
}

/// umbrella: alice (1), bob (2), carol (3); wayne: alice (1), bob (2). Same names, same ids.
fn provision(umbrella: &As<'_>, wayne: &As<'_>) {
    assert_eq!(umbrella.create("alice@x.test", "u-alice", "Boss"), "1");
    assert_eq!(umbrella.create("bob@x.test", "u-bob", "Clerk"), "2");
    assert_eq!(umbrella.create("carol@x.test", "u-carol", "Clerk"), "3");
    assert_eq!(wayne.create("alice@x.test", "w-alice", "Clerk"), "1");
    assert_eq!(wayne.create("bob@x.test", "w-bob", "Clerk"), "2");
}

#[test]
fn reads_filters_and_paging_stay_inside_the_keys_tenant() {
    let lax = lax::start();
    let (umbrella, wayne) = views(&lax);
    provision(&umbrella, &wayne);

    assert_eq!(umbrella.external_id("1"), "u-alice");
    assert_eq!(wayne.external_id("1"), "w-alice");
    assert_scim_error(&wayne.call("GET", "/Users/3", None), 404, None);

    assert_eq!(
        umbrella.list(""),
        (vec!["u-alice".into(), "u-bob".into(), "u-carol".into()], 3)
    );
    assert_eq!(wayne.list(""), (vec!["w-alice".into(), "w-bob".into()], 2));
    assert_eq!(
        wayne.list("startIndex=2&count=1"),
        (vec!["w-bob".into()], 2)
    );
    assert_eq!(wayne.list("startIndex=3&count=5"), (vec![], 2));

    // A backend search, the store's externalId index, and a filter only the store can answer.
    assert_eq!(
        wayne.filter("userName eq \"alice@x.test\""),
        (vec!["w-alice".into()], 1)
    );
    assert_eq!(
        umbrella.filter("userName eq \"ALICE@x.test\""),
        (vec!["u-alice".into()], 1)
    );
    assert_eq!(wayne.filter("externalId eq \"u-alice\""), (vec![], 0));
    assert_eq!(
        wayne.filter("externalId eq \"w-bob\""),
        (vec!["w-bob".into()], 1)
    );
    assert_eq!(wayne.filter("title eq \"Boss\""), (vec![], 0));
    assert_eq!(
        umbrella.filter("title eq \"Boss\""),
        (vec!["u-alice".into()], 1)
    );
    let post = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName sw \"carol\""});
    let r = wayne.call("POST", "/Users/.search", Some(&post));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["totalResults"], 0, "{}", r.text());
}

#[test]
fn writes_with_one_tenants_key_never_touch_the_other_tenant() {
    let lax = lax::start();
    let (umbrella, wayne) = views(&lax);
    provision(&umbrella, &wayne);
    let before = lax.backend.people(UMBRELLA);

    // umbrella's carol (3) does not exist for wayne.
    let put = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "mallory@x.test", "externalId": "w-mallory"});
    assert_scim_error(&wayne.call("PUT", "/Users/3", Some(&put)), 404, None);
    let patch = json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "displayName", "value": "Mallory"}]});
    assert_scim_error(&wayne.call("PATCH", "/Users/3", Some(&patch)), 404, None);
    assert_scim_error(&wayne.call("DELETE", "/Users/3", None), 404, None);

    // Ids both tenants have: wayne's writes change wayne's users only.
    let r = wayne.call("PATCH", "/Users/1", Some(&patch));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["externalId"], "w-alice");
    let r = wayne.call("PUT", "/Users/2", Some(&put));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(wayne.call("DELETE", "/Users/2", None).status, 204);
    assert_eq!(
        lax.backend.people(UMBRELLA),
        before,
        "umbrella's backend users are untouched"
    );
    assert_eq!(
        lax.backend.person(WAYNE, "1").expect("wayne 1")["name"],
        "Mallory"
    );
    assert!(lax.backend.person(WAYNE, "2").is_none());
    assert_eq!(umbrella.external_id("1"), "u-alice");
    assert_eq!(umbrella.external_id("2"), "u-bob");
    let r = umbrella.call("GET", "/Users/1", None).json();
    assert_eq!(r["displayName"], "u-alice", "{r}");
    assert_eq!(
        umbrella.filter("externalId eq \"u-bob\""),
        (vec!["u-bob".into()], 1)
    );
    assert_eq!(wayne.filter("externalId eq \"w-bob\""), (vec![], 0));
    assert_eq!(wayne.filter("externalId eq \"w-mallory\""), (vec![], 0));
}

#[test]
fn the_guard_reads_the_managed_flag_of_the_callers_own_tenant() {
    let lax = lax::start();
    let (umbrella, wayne) = views(&lax);
    provision(&umbrella, &wayne);
    // wayne's person 3 is the app's own, never written by SCIM; umbrella's 3 (carol) is managed.
    assert_eq!(
        lax.backend.seed(WAYNE, json!({"email": "dave@x.test"})),
        "3"
    );
    let change = |session: &str| {
        let auth = format!("Bearer {session}");
        lax.gw.request(
            "PUT",
            "/v1/me/password",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
            ],
            Some(b"{\"password\":\"n3w\"}"),
        )
    };
    let r = change(&lax.backend.session(WAYNE, "3"));
    assert_eq!(
        r.status,
        200,
        "wayne's unmanaged 3 changes its password: {}",
        r.text()
    );
    let r = change(&lax.backend.session(UMBRELLA, "3"));
    assert_eq!(r.status, 403, "umbrella's managed 3 may not: {}", r.text());
    assert_eq!(
        lax.backend.requests_to("/v1/me/password").len(),
        1,
        "only wayne's request reached the backend"
    );
}

#[test]
fn the_managed_flag_outlives_a_restart() {
    let lax = lax::start();
    let (umbrella, wayne) = views(&lax);
    provision(&umbrella, &wayne);
    lax.backend.seed(WAYNE, json!({"email": "dave@x.test"}));
    // A new process knows nothing in memory: what the guard reads comes from the store.
    let lax = lax.restart();
    let change = |ws: &str, id: &str| {
        let auth = format!("Bearer {}", lax.backend.session(ws, id));
        let h = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        lax.gw
            .request(
                "PUT",
                "/v1/me/password",
                &h,
                Some(b"{\"password\":\"n3w\"}"),
            )
            .status
    };
    assert_eq!(change(UMBRELLA, "1"), 403, "SCIM-created, managed");
    assert_eq!(change(WAYNE, "2"), 403, "SCIM-created, managed");
    assert_eq!(change(WAYNE, "3"), 200, "the app's own, unmanaged");
}
