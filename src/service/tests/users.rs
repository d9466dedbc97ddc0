//! `/Users`: create, read, list and search, replace, patch and delete.

use super::*;
use crate::scim::normalize::normalize_user;

// ---- create -----------------------------------------------------------------------------------

#[tokio::test]
async fn create_answers_201_with_location_and_etag_and_keeps_the_user() {
    let f = fixture();
    let mut body = user("alice@contoso.com");
    body["password"] = json!("Secret#1");
    let r = f.call("POST", "/Users", Some(&body)).await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let answer = json_of(&r);
    let id = answer["id"].as_str().expect("id");
    assert_eq!(
        header(&r, "Location"),
        Some(format!("{BASE}/Users/{id}").as_str())
    );
    assert_eq!(answer["meta"]["location"], format!("{BASE}/Users/{id}"));
    assert_eq!(answer["meta"]["created"], NOW);
    assert!(
        header(&r, "ETag").is_some_and(|t| t.starts_with("W/\"")),
        "{:?}",
        r.headers
    );
    assert!(answer.get("password").is_none());
    let kept = f.directory.user(TENANT, id).expect("kept");
    assert_eq!(kept.resource["externalId"], "ext-alice@contoso.com");
    assert!(
        kept.resource.get("password").is_none(),
        "the password is never written"
    );
    assert_eq!(f.directory.locked(), ["userName:alice@contoso.com"]);
}

#[tokio::test]
async fn create_passes_the_directorys_uniqueness_answer_through() {
    let f = fixture();
    f.create("alice@contoso.com").await;
    let r = f
        .call("POST", "/Users", Some(&user("Alice@Contoso.com")))
        .await;
    assert_error(&r, 409, Some("uniqueness"));
    assert_eq!(f.directory.users(TENANT).len(), 1);
    assert_eq!(f.directory.writes(), 1);
}

#[tokio::test]
async fn create_without_user_name_or_schema_writes_nothing() {
    let f = fixture();
    let mut nameless = user("x@contoso.com");
    nameless.as_object_mut().expect("object").remove("userName");
    let r = f.call("POST", "/Users", Some(&nameless)).await;
    assert_error(&r, 400, Some("invalidValue"));
    let mut schemaless = user("x@contoso.com");
    schemaless["schemas"] = json!([]);
    let r = f.call("POST", "/Users", Some(&schemaless)).await;
    assert_eq!(r.status, 400, "{}", text(&r));
    assert_eq!(f.directory.writes(), 0);
}

// ---- read, list, search -------------------------------------------------------------------------

#[tokio::test]
async fn get_answers_the_user_with_its_etag_and_projection() {
    let f = fixture();
    let id = f.create("alice@contoso.com").await;
    let r = f.call("GET", &format!("/Users/{id}"), None).await;
    assert_eq!(r.status, 200);
    let created_etag = header(&r, "ETag").map(str::to_string);
    assert_eq!(json_of(&r)["userName"], "alice@contoso.com");
    let r = f
        .call("GET", &format!("/Users/{id}?attributes=userName"), None)
        .await;
    let only = json_of(&r);
    assert_eq!(only["userName"], "alice@contoso.com");
    assert!(
        only.get("name").is_none() && only.get("emails").is_none(),
        "{only}"
    );
    assert_eq!(only["id"], id, "id is always returned");
    let r = f
        .call(
            "GET",
            &format!("/Users/{id}?excludedAttributes=emails,name"),
            None,
        )
        .await;
    let without = json_of(&r);
    assert!(without.get("emails").is_none() && without.get("name").is_none());
    assert_eq!(without["externalId"], "ext-alice@contoso.com");
    assert_eq!(header(&r, "ETag").map(str::to_string), created_etag);
    let detail = assert_error(&f.call("GET", "/Users/nobody", None).await, 404, None);
    assert!(detail.contains("nobody"), "{detail}");
}

#[tokio::test]
async fn list_filters_and_pages() {
    let f = fixture();
    for n in 1..=5 {
        f.create(&format!("user{n}@contoso.com")).await;
    }
    let all = json_of(&f.call("GET", "/Users", None).await);
    assert_eq!(
        (
            all["totalResults"].clone(),
            all["Resources"].as_array().map(Vec::len)
        ),
        (json!(5), Some(5))
    );
    let page = json_of(&f.call("GET", "/Users?startIndex=2&count=2", None).await);
    assert_eq!(page["totalResults"], 5);
    assert_eq!(page["startIndex"], 2);
    assert_eq!(page["itemsPerPage"], 2);
    let names: Vec<&str> = page["Resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|u| u["userName"].as_str())
        .collect();
    assert_eq!(names, ["user2@contoso.com", "user3@contoso.com"]);
    let q = "/Users?filter=userName%20eq%20%22USER4@contoso.com%22&attributes=userName";
    let found = json_of(&f.call("GET", q, None).await);
    assert_eq!(found["totalResults"], 1);
    assert_eq!(found["Resources"][0]["userName"], "user4@contoso.com");
    assert!(found["Resources"][0].get("name").is_none());
    let none = json_of(
        &f.call("GET", "/Users?filter=externalId%20eq%20%22nope%22", None)
            .await,
    );
    assert_eq!(
        (none["totalResults"].clone(), none["Resources"].clone()),
        (json!(0), json!([]))
    );
}

#[tokio::test]
async fn post_search_answers_as_the_query_would() {
    let f = fixture();
    f.create("alice@contoso.com").await;
    f.create("bob@contoso.com").await;
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName sw \"bob\"",
        "attributes": ["userName"],
    });
    let r = f.call("POST", "/Users/.search", Some(&body)).await;
    let found = json_of(&r);
    assert_eq!(found["totalResults"], 1, "{found}");
    assert_eq!(found["Resources"][0]["userName"], "bob@contoso.com");
    assert_eq!(f.call("GET", "/Users/.search", None).await.status, 405);
}

#[tokio::test]
async fn bad_queries_are_400_never_an_unfiltered_list() {
    let f = fixture();
    f.create("alice@contoso.com").await;
    assert_error(
        &f.call("GET", "/Users?filter=userName%20zz%20%22a%22", None)
            .await,
        400,
        Some("invalidFilter"),
    );
    assert_eq!(f.call("GET", "/Users?filter=%20", None).await.status, 400);
    assert_error(
        &f.call("GET", "/Users?sortBy=userName", None).await,
        400,
        Some("invalidValue"),
    );
    assert_eq!(f.call("GET", "/Users?count=many", None).await.status, 400);
}

// ---- replace ------------------------------------------------------------------------------------

#[tokio::test]
async fn put_replaces_the_user() {
    let f = fixture();
    let id = f.create("alice@contoso.com").await;
    let mut body = user("alice@contoso.com");
    body["name"]["familyName"] = json!("Smyth");
    body.as_object_mut().expect("object").remove("emails");
    let r = f.call("PUT", &format!("/Users/{id}"), Some(&body)).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(json_of(&r)["name"]["familyName"], "Smyth");
    let kept = f.directory.user(TENANT, &id).expect("kept");
    assert_eq!(kept.resource["name"]["familyName"], "Smyth");
    assert!(
        kept.resource.get("emails").is_none(),
        "a PUT replaces the whole user"
    );
    assert_eq!(f.directory.locked().last(), Some(&format!("user:{id}")));
}

#[tokio::test]
async fn put_without_user_name_writes_nothing() {
    let f = fixture();
    let id = f.create("alice@contoso.com").await;
    let before = f.directory.user(TENANT, &id);
    let body = json!({"schemas": [CORE], "displayName": "Alice"});
    let r = f.call("PUT", &format!("/Users/{id}"), Some(&body)).await;
    assert_error(&r, 400, Some("invalidValue"));
    assert_eq!(f.directory.user(TENANT, &id), before);
    assert_eq!(f.directory.writes(), 1);
    let r = f
        .call("PUT", "/Users/nobody", Some(&user("n@contoso.com")))
        .await;
    assert_error(&r, 404, None);
}

#[tokio::test]
async fn if_match_guards_put_patch_and_delete() {
    let f = fixture();
    let id = f.create("alice@contoso.com").await;
    let path = format!("/Users/{id}");
    let etag = header(&f.call("GET", &path, None).await, "ETag")
        .expect("etag")
        .to_string();
    let stale = "W/\"stale\"".to_string();
    let mut body = user("alice@contoso.com");
    body["nickName"] = json!("al");
    let patch = patch_body(json!([{"op": "replace", "path": "nickName", "value": "ally"}]));
    for (method, body) in [
        ("PUT", Some(&body)),
        ("PATCH", Some(&patch)),
        ("DELETE", None),
    ] {
        let mut req = request(method, &path, body);
        req.if_match = Some(stale.clone());
        assert_error(&f.send(req).await, 412, None);
    }
    assert_eq!(f.directory.writes(), 1, "only the create");
    assert!(f
        .directory
        .user(TENANT, &id)
        .expect("kept")
        .resource
        .get("nickName")
        .is_none());
    let mut req = request("PUT", &path, Some(&body));
    req.if_match = Some(etag);
    let r = f.send(req).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(
        f.directory.user(TENANT, &id).expect("kept").resource["nickName"],
        "al"
    );
}

// ---- patch --------------------------------------------------------------------------------------

#[tokio::test]
async fn entra_patches_deactivate_and_change_emails() {
    let f = fixture();
    let id = f.create("alice@contoso.com").await;
    let path = format!("/Users/{id}");
    let ops = json!([
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Add", "path": "emails[type eq \"home\"].value", "value": "alice@home.example"},
    ]);
    let r = f.call("PATCH", &path, Some(&patch_body(ops))).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(json_of(&r)["active"], false);
    let kept = f.directory.user(TENANT, &id).expect("kept").resource;
    assert_eq!(kept["active"], false);
    let emails = kept["emails"].as_array().expect("emails");
    assert!(
        emails
            .iter()
            .any(|e| e["type"] == "home" && e["value"] == "alice@home.example"),
        "{kept}"
    );
    let ops = json!([{"op": "Remove", "path": "emails[type eq \"work\"]"}]);
    let r = f.call("PATCH", &path, Some(&patch_body(ops))).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let kept = f.directory.user(TENANT, &id).expect("kept").resource;
    assert_eq!(
        kept["emails"],
        json!([{"type": "home", "value": "alice@home.example"}])
    );
    // Entra's path-less form with a value object.
    let ops = json!([{"op": "Replace", "value": {"active": true, "name.familyName": "Smyth"}}]);
    let r = f.call("PATCH", &path, Some(&patch_body(ops))).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let kept = f.directory.user(TENANT, &id).expect("kept").resource;
    assert_eq!(
        (kept["active"].clone(), kept["name"]["familyName"].clone()),
        (json!(true), json!("Smyth"))
    );
}

#[tokio::test]
async fn a_patch_that_changes_nothing_does_not_write() {
    let f = fixture();
    let id = f.create("alice@contoso.com").await;
    let ops = json!([{"op": "Replace", "path": "active", "value": "True"}]);
    let r = f
        .call(
            "PATCH",
            &format!("/Users/{id}"),
            Some(&patch_body(ops.clone())),
        )
        .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(f.directory.writes(), 1, "only the create");
    // The same PATCH of a user the application made (not yet managed) writes, to link it.
    let bob = normalize_user(&user("bob@contoso.com")).expect("valid");
    let seeded = f.directory.seed(TENANT, bob);
    let r = f
        .call("PATCH", &format!("/Users/{seeded}"), Some(&patch_body(ops)))
        .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(f.directory.writes(), 2);
    assert_eq!(
        f.directory
            .user(TENANT, &seeded)
            .expect("bob")
            .last_modified,
        NOW
    );
}

#[tokio::test]
async fn bad_patches_are_400_and_write_nothing() {
    let f = fixture();
    let id = f.create("alice@contoso.com").await;
    let path = format!("/Users/{id}");
    let before = f.directory.user(TENANT, &id);
    let unknown_op = patch_body(json!([{"op": "frobnicate", "path": "nickName", "value": "x"}]));
    assert_eq!(f.call("PATCH", &path, Some(&unknown_op)).await.status, 400);
    let bad_path = patch_body(json!([{"op": "replace", "path": "emails[type eq", "value": "x"}]));
    assert_error(
        &f.call("PATCH", &path, Some(&bad_path)).await,
        400,
        Some("invalidPath"),
    );
    let fine = patch_body(json!([{"op": "replace", "path": "nickName", "value": "x"}]));
    assert_error(
        &f.call("PATCH", "/Users/nobody", Some(&fine)).await,
        404,
        None,
    );
    assert_eq!(f.directory.user(TENANT, &id), before);
    assert_eq!(f.directory.writes(), 1);
}

// ---- delete -------------------------------------------------------------------------------------

#[tokio::test]
async fn delete_answers_204_then_404() {
    let f = fixture();
    let id = f.create("alice@contoso.com").await;
    let keep = f.create("bob@contoso.com").await;
    let r = f.call("DELETE", &format!("/Users/{id}"), None).await;
    assert_eq!((r.status, r.body.len()), (204, 0));
    assert!(f.directory.user(TENANT, &id).is_none());
    assert!(f.directory.user(TENANT, &keep).is_some());
    assert_error(
        &f.call("GET", &format!("/Users/{id}"), None).await,
        404,
        None,
    );
    assert_error(
        &f.call("DELETE", &format!("/Users/{id}"), None).await,
        404,
        None,
    );
}
