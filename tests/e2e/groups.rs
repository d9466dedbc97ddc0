//! SCIM `/Groups` end to end, over real sockets, on every membership model: the demo backend
//! (one call per member), the alt backend's teams (members on the group) and the alt fixture
//! that keeps each user's groups on the account. The same scenarios run on all three.

use super::alt::alt_gateway_from;
use super::alt_upstream::{ALT, ALT_USER_GROUPS};
use super::group_scenarios::{self as groups, GROUP};
use super::harness::{assert_scim_error, Gateway};
use serde_json::json;

/// The demo gateway: members are added and removed one call each.
fn calls() -> Gateway {
    Gateway::demo()
}

/// The alt gateway: members are a list on the team.
fn group_field() -> Gateway {
    alt_gateway_from(ALT, |_| {}).0
}

/// The alt gateway configured to keep memberships on the accounts.
fn user_field() -> Gateway {
    alt_gateway_from(ALT_USER_GROUPS, |_| {}).0
}

macro_rules! every_scenario {
    ($model:ident) => {
        mod $model {
            use super::*;

            #[test]
            fn entra_cycle() {
                groups::entra_cycle(&super::$model());
            }

            #[test]
            fn okta_push() {
                groups::okta_push(&super::$model());
            }

            #[test]
            fn bad_input_is_refused_and_applies_nothing() {
                groups::bad_input(&super::$model());
            }

            #[test]
            fn concurrent_adds_lose_no_member() {
                groups::concurrent_adds(&super::$model());
            }

            #[test]
            fn one_patch_adds_and_removes_many_members() {
                groups::many_members(&super::$model(), 60);
            }
        }
    };
}

every_scenario!(calls);
every_scenario!(group_field);
every_scenario!(user_field);

#[test]
fn a_thousand_members_in_one_patch() {
    groups::many_members(&Gateway::demo(), 1000);
}

#[test]
fn more_members_than_the_cap_is_too_many_and_applies_nothing() {
    let gw = Gateway::demo_with(|c| {
        if let Some(g) = c.groups.as_mut() {
            g.max_members_per_request = 3;
        }
    });
    let u = groups::users(&gw, "cap-g", 4);
    let id = groups::create(&gw, "Capped", "ext-capped");
    let all: Vec<_> = u.iter().map(|id| json!({ "value": id })).collect();
    let r = groups::patch_reply(
        &gw,
        &id,
        json!([{"op": "add", "path": "members", "value": all}]),
    );
    assert_scim_error(&r, 400, Some("tooMany"));
    assert!(groups::members(&gw, &id).is_empty(), "nothing was applied");
    let three = &all[..3];
    groups::patch(
        &gw,
        &id,
        json!([{"op": "add", "path": "members", "value": three}]),
    );
    assert_eq!(groups::members(&gw, &id).len(), 3);
    let body = json!({"schemas": [GROUP], "displayName": "Big", "members": all});
    assert_scim_error(
        &gw.scim("POST", "/Groups", Some(&body)),
        400,
        Some("tooMany"),
    );
    assert_eq!(
        groups::lookup(&gw, "displayName eq \"Big\"")["totalResults"],
        0
    );
}

#[test]
fn discovery_lists_the_group_resource_type_and_schema() {
    let gw = Gateway::demo();
    let types = gw.scim("GET", "/ResourceTypes", None).json();
    let names: Vec<_> = types["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(names.contains(&"Group".to_string()), "{types}");
    let group = gw.scim("GET", "/ResourceTypes/Group", None);
    assert_eq!(group.status, 200, "{}", group.text());
    assert_eq!(group.json()["endpoint"], "/Groups");
    let schema = gw.scim("GET", &format!("/Schemas/{GROUP}"), None);
    assert_eq!(schema.status, 200, "{}", schema.text());
    let attrs = schema.json()["attributes"].clone();
    assert!(attrs
        .as_array()
        .expect("attributes")
        .iter()
        .any(|a| a["name"] == "members"));
}

#[test]
fn without_a_groups_section_groups_are_not_served() {
    let gw = Gateway::demo_with(|c| c.groups = None);
    assert_scim_error(&gw.scim("GET", "/Groups", None), 404, None);
    assert_scim_error(&gw.scim("GET", "/ResourceTypes/Group", None), 404, None);
    let types = gw.scim("GET", "/ResourceTypes", None).json();
    assert_eq!(types["totalResults"], 1, "{types}");
}

#[test]
fn a_group_patch_can_answer_the_group() {
    let gw = Gateway::demo_with(|c| {
        if let Some(g) = c.groups.as_mut() {
            g.patch_returns_group = true;
        }
    });
    let id = groups::create(&gw, "Answered", "ext-answered");
    let r = groups::patch_reply(
        &gw,
        &id,
        json!([{"op": "replace", "path": "displayName", "value": "Answered 2"}]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["displayName"], "Answered 2");
    assert!(r.header("etag").is_some());
}

#[test]
fn a_root_search_lists_users_then_groups() {
    let gw = Gateway::demo();
    let u = groups::users(&gw, "root-s", 2);
    let g = groups::create(&gw, "Root searched", "ext-root-s0");
    groups::patch(
        &gw,
        &g,
        json!([{"op": "add", "path": "members", "value": [{"value": u[0]}]}]),
    );
    let total = |path: &str| gw.scim("GET", path, None).json()["totalResults"].clone();
    let (users, all_groups) = (total("/Users?count=0"), total("/Groups?count=0"));
    let listed_groups = gw.scim("GET", "/Groups", None).json()["Resources"].clone();
    assert_eq!(
        all_groups,
        listed_groups.as_array().unwrap().len(),
        "count=0 still counts"
    );
    let search = |body: serde_json::Value| {
        let r = gw.scim("POST", "/.search", Some(&body));
        assert_eq!(r.status, 200, "{body}: {}", r.text());
        r.json()
    };
    let sum = users.as_u64().unwrap() + all_groups.as_u64().unwrap();

    let everything = search(json!({"excludedAttributes": ["members"], "count": 1000}));
    assert_eq!(everything["totalResults"], sum);
    let listed = everything["Resources"].as_array().unwrap();
    let last = listed.last().unwrap();
    assert_eq!(last["id"], g.as_str(), "groups follow the users");
    assert!(last.get("members").is_none() && last["displayName"] == "Root searched");
    assert!(listed
        .iter()
        .any(|r| r["id"] == u[1].as_str() && r["userName"].is_string()));

    let by_external_id = search(json!({"filter": "externalId sw \"ext-root-s0\""}));
    assert_eq!(by_external_id["totalResults"], 2, "{by_external_id}");
    let by_user_name = search(json!({"filter": "userName eq \"root-s0@example.test\""}));
    assert_eq!(by_user_name["totalResults"], 1, "only users know userName");
    let group_only = search(json!({"filter": "members.value eq \"".to_string() + &u[0] + "\""}));
    assert_eq!(group_only["totalResults"], 1, "{group_only}");
    assert_eq!(group_only["Resources"][0]["id"], g.as_str());

    let first_group = search(json!({"startIndex": users.as_u64().unwrap() + 1, "count": 1}));
    assert_eq!(first_group["totalResults"], sum);
    assert_eq!(first_group["Resources"].as_array().unwrap().len(), 1);
    assert!(first_group["Resources"][0]["schemas"][0]
        .as_str()
        .unwrap()
        .ends_with(":Group"));

    let names = search(json!({"attributes": ["userName", "displayName"], "count": 1000}));
    let group = names["Resources"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(group["displayName"], "Root searched");
    assert!(group.get("members").is_none(), "{group}");

    let body = json!({"attributes": ["nope"]});
    assert_scim_error(
        &gw.scim("POST", "/.search", Some(&body)),
        400,
        Some("invalidValue"),
    );
    let body = json!({"filter": "nope eq 1"});
    assert_scim_error(
        &gw.scim("POST", "/.search", Some(&body)),
        400,
        Some("invalidFilter"),
    );
}
