//! Everything but `/Users`: authentication, discovery, Groups and Bulk, and the shape of errors.

use super::*;

#[tokio::test]
async fn without_a_valid_key_the_answer_is_401_and_nothing_is_read() {
    let f = fixture();
    f.create("alice@contoso.com").await;
    for authorization in [
        vec![],
        vec![b"Bearer wrong".to_vec()],
        vec![b"Basic dGVzdA==".to_vec()],
    ] {
        let mut req = request("GET", "/Users", None);
        req.authorization = authorization;
        let (r, principal) = f.handle(&req).await;
        assert!(principal.is_none());
        assert_error(&r, 401, None);
        assert!(header(&r, "WWW-Authenticate").is_some_and(|v| v.starts_with("Bearer")));
    }
    let mut req = request("DELETE", "/Users/u1", None);
    req.authorization = vec![];
    assert_eq!(f.send(req).await.status, 401);
    assert!(
        f.directory.user(TENANT, "u1").is_some(),
        "an unauthenticated delete does nothing"
    );
    let (r, principal) = f.handle(&request("GET", "/Users", None)).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        principal.map(|p| p.tenant.name.clone()).as_deref(),
        Some(TENANT)
    );
}

#[tokio::test]
async fn repeated_failures_from_one_address_are_429_and_a_valid_key_still_passes() {
    let f = fixture();
    let bad = |client: &str| {
        let mut req = request("GET", "/Users", None);
        req.authorization = vec![b"Bearer wrong".to_vec()];
        req.client = Some(client.parse().expect("address"));
        req
    };
    for _ in 0..MAX_FAILURES {
        assert_eq!(f.send(bad("10.0.0.1")).await.status, 401);
    }
    let r = f.send(bad("10.0.0.1")).await;
    assert_error(&r, 429, None);
    assert!(header(&r, "Retry-After").is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1)));
    assert_eq!(
        f.send(bad("10.0.0.2")).await.status,
        401,
        "another address is not affected"
    );
    let mut good = request("GET", "/Users", None);
    good.client = Some("10.0.0.1".parse().expect("address"));
    assert_eq!(f.send(good).await.status, 200);
    // Without a client address there is nothing to count: always 401.
    let mut anonymous = bad("10.0.0.1");
    anonymous.client = None;
    assert_eq!(f.send(anonymous).await.status, 401);
}

#[tokio::test]
async fn schemas_carry_the_directorys_restrictions() {
    let restrictions = Restrictions {
        canonical_values: vec![(
            "userType".into(),
            vec!["Employee".into(), "Contractor".into()],
        )],
    };
    let f = fixture_with(restrictions);
    let r = f.call("GET", &format!("/Schemas/{CORE}"), None).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let schema = json_of(&r);
    let user_type = schema["attributes"]
        .as_array()
        .expect("attributes")
        .iter()
        .find(|a| a["name"] == "userType")
        .expect("userType")
        .clone();
    assert_eq!(
        user_type["canonicalValues"],
        json!(["Employee", "Contractor"])
    );
    let all = json_of(&f.call("GET", "/Schemas", None).await);
    assert_eq!(all["totalResults"], 2);
    assert!(all
        .to_string()
        .contains("\"canonicalValues\":[\"Employee\",\"Contractor\"]"));
    // Without restrictions none is advertised.
    let plain = json_of(
        &fixture()
            .call("GET", &format!("/Schemas/{CORE}"), None)
            .await,
    );
    assert!(!plain.to_string().contains("canonicalValues"), "{plain}");
    assert_error(&f.call("GET", "/Schemas/urn:nope", None).await, 404, None);
}

#[tokio::test]
async fn discovery_answers_get_only() {
    let f = fixture();
    let spc = json_of(&f.call("GET", "/ServiceProviderConfig", None).await);
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["bulk"]["supported"], false);
    assert_eq!(spc["filter"]["maxResults"], 50);
    let types = json_of(&f.call("GET", "/ResourceTypes", None).await);
    assert_eq!(types["Resources"][0]["id"], "User");
    assert_eq!(
        json_of(&f.call("GET", "/ResourceTypes/User", None).await)["endpoint"],
        "/Users"
    );
    assert_error(
        &f.call("GET", "/ResourceTypes/Group", None).await,
        404,
        None,
    );
    let r = f
        .call("POST", "/ServiceProviderConfig", Some(&json!({})))
        .await;
    assert_error(&r, 405, None);
    assert_eq!(header(&r, "Allow"), Some("GET"));
}

#[tokio::test]
async fn groups_and_bulk_are_refused_with_what_to_do() {
    let f = fixture();
    let body =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Sales"});
    let detail = assert_error(&f.call("POST", "/Groups", Some(&body)).await, 404, None);
    assert!(detail.contains("Groups are not provisioned"), "{detail}");
    assert_error(
        &f.call("GET", "/Groups?filter=displayName%20eq%20%22Sales%22", None)
            .await,
        404,
        None,
    );
    let bulk =
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": []});
    let detail = assert_error(&f.call("POST", "/Bulk", Some(&bulk)).await, 501, None);
    assert!(
        detail.contains("Bulk operations are not supported"),
        "{detail}"
    );
    assert_eq!(f.directory.writes(), 0);
}

#[tokio::test]
async fn request_mistakes_are_rfc_7644_errors() {
    let f = fixture();
    let id = f.create("alice@contoso.com").await;
    let path = format!("/Users/{id}");
    let r = f.call("POST", &path, Some(&user("x@contoso.com"))).await;
    assert_error(&r, 405, None);
    assert_eq!(header(&r, "Allow"), Some("GET, PUT, PATCH, DELETE"));
    let mut xml = request("POST", "/Users", Some(&user("x@contoso.com")));
    xml.content_type = Some("application/xml".into());
    assert_error(&f.send(xml).await, 415, None);
    let mut broken = request("POST", "/Users", None);
    broken.body = "{\"userName\": ".into();
    assert_error(&f.send(broken).await, 400, Some("invalidSyntax"));
    let mut twice = request("POST", "/Users", None);
    twice.body =
        format!("{{\"schemas\":[\"{CORE}\"],\"userName\":\"a@b.c\",\"userName\":\"d@e.f\"}}")
            .into();
    assert_eq!(
        f.send(twice).await.status,
        400,
        "duplicate keys are refused"
    );
    assert_error(&f.call("GET", "/Nothing", None).await, 404, None);
    assert_eq!(
        f.directory.users(TENANT).len(),
        1,
        "no mistake wrote anything"
    );
    assert_eq!(f.directory.writes(), 1);
}

#[tokio::test]
async fn cursor_paging_walks_users_and_refuses_foreign_cursors() {
    let f = fixture();
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(f.create(&format!("u{i}@acme.test")).await);
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = f
            .call("GET", &format!("/Users?cursor={cursor}&count=3"), None)
            .await;
        assert_eq!(r.status, 200, "{}", text(&r));
        let body = json_of(&r);
        assert_eq!(body["totalResults"], 7);
        assert!(body.get("startIndex").is_none());
        for u in body["Resources"].as_array().expect("list") {
            seen.push(u["id"].as_str().expect("id").to_string());
        }
        match body["nextCursor"].as_str() {
            Some(n) => cursor = n.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let r = f.call("GET", "/Users?cursor=&count=3", None).await;
    let next = json_of(&r)["nextCursor"]
        .as_str()
        .expect("next")
        .to_string();
    for target in [
        format!("/Users?cursor={next}&filter=userName%20pr"),
        format!("/Users?cursor={next}x"),
    ] {
        let r = f.call("GET", &target, None).await;
        let body = json_of(&r);
        assert_eq!(
            (r.status, &body["scimType"]),
            (400, &json!("invalidCursor")),
            "{body}"
        );
        assert_eq!(body["schemas"][0], ERROR);
    }
    let spc = json_of(&f.call("GET", "/ServiceProviderConfig", None).await);
    assert_eq!(spc["pagination"]["maxPageSize"], 50);
}
