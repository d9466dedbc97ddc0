//! One user per userName and tenant against the lax backend, which itself accepts any number of
//! users with one email: what keeps creates unique is the gateway alone (its per-userName create
//! lock and its lookup under that lock).

use super::harness::assert_scim_error;
use super::lax::{self, UMBRELLA, WAYNE};
use super::races::{one_created_rest_conflict, together};
use scimgate::backend::spec::ErrorRule;
use scimgate::scim::error::ScimType;
use serde_json::{json, Value};

/// Threads per race.
const RACERS: usize = 20;

/// The backend's people of `ws` whose email equals `email` ignoring case.
fn people_named(backend: &super::lax_backend::LaxBackend, ws: &str, email: &str) -> Vec<Value> {
    backend
        .people(ws)
        .into_iter()
        .filter(|p| {
            p["email"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
        .collect()
}

#[test]
fn concurrent_creates_against_a_backend_without_unique_names_make_one_user() {
    let lax = lax::start();
    let spellings = ["Race@Lax.test", "race@lax.test", "RACE@LAX.TEST"];
    let replies = together(RACERS, |i| {
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": spellings[i % spellings.len()], "externalId": format!("ext-{i}")});
        lax.gw.scim("POST", "/Users", Some(&body))
    });
    let winner = one_created_rest_conflict(&replies);
    let people = people_named(&lax.backend, UMBRELLA, "race@lax.test");
    assert_eq!(people.len(), 1, "{people:?}");
    assert_eq!(people[0]["id"], replies[winner].json()["id"]);
    let posts = lax.backend.requests_to(&format!("/v1/{UMBRELLA}/people"));
    let posts = posts.iter().filter(|r| r.starts_with("POST ")).count();
    assert_eq!(posts, 1, "only the winner reached the backend's create");
}

#[test]
fn a_user_name_the_app_already_has_is_409_whatever_its_case() {
    let lax = lax::start();
    lax.backend.seed(
        UMBRELLA,
        json!({"email": "Mixed@Case.test", "name": "App-made"}),
    );
    let r = lax.gw.scim(
        "POST",
        "/Users",
        Some(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "mixed@CASE.test"})),
    );
    assert_scim_error(&r, 409, Some("uniqueness"));
    assert_eq!(
        people_named(&lax.backend, UMBRELLA, "mixed@case.test").len(),
        1
    );
    // The name is taken in umbrella only: wayne creates it.
    let r = lax.gw.scim_as(
        &lax.wayne,
        "POST",
        "/Users",
        Some(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "mixed@case.test"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        people_named(&lax.backend, WAYNE, "mixed@case.test").len(),
        1
    );
    assert_eq!(
        people_named(&lax.backend, UMBRELLA, "mixed@case.test").len(),
        1
    );
}

#[test]
fn only_a_uniqueness_rule_means_the_backend_checks_names_itself() {
    // A rule for another backend error says nothing about duplicates: the gateway still checks.
    let lax = lax::start_with(|c| {
        c.users.errors.push(ErrorRule {
            status: 422,
            body_contains: None,
            body_field: None,
            scim_status: 400,
            scim_type: Some(ScimType::InvalidValue),
            detail: None,
        })
    });
    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "twice@lax.test"});
    assert_eq!(lax.gw.scim("POST", "/Users", Some(&body)).status, 201);
    assert_scim_error(
        &lax.gw.scim("POST", "/Users", Some(&body)),
        409,
        Some("uniqueness"),
    );
    assert_eq!(
        people_named(&lax.backend, UMBRELLA, "twice@lax.test").len(),
        1
    );
}
