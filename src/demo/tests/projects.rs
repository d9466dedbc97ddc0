//! End-to-end tests of the project routes over a real loopback server.

use serde_json::{json, Value};

use super::{session, Client, TestResult, TestServer, PASSWORD, SERVICE_TOKEN};

const PROJECTS: &str = "/api/teams/acme/projects";

fn ids(v: &Value, list: &str, key: &str) -> Vec<i64> {
    v[list]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p[key].as_i64()).collect())
        .unwrap_or_default()
}

fn create(c: &mut Client, token: &str, body: &Value) -> Result<Value, Box<dyn std::error::Error>> {
    let r = c.call("POST", PROJECTS, Some(token), Some(body))?;
    assert_eq!(r.status, 201, "{r:?}");
    Ok(r.json())
}

#[test]
fn seeded_project_and_crud() -> TestResult {
    let server = TestServer::start("projects-crud")?;
    let mut c = server.client()?;
    let r = c.call("GET", PROJECTS, Some(SERVICE_TOKEN), None)?;
    let v = r.json();
    assert_eq!((r.status, v["total"].as_u64()), (200, Some(1)));
    let launch = &v["projects"][0];
    assert_eq!(
        (launch["name"].as_str(), launch["team"].as_str()),
        (Some("Launch"), Some("acme"))
    );
    assert_eq!(launch["member_count"], 2);
    let r = c.call(
        "GET",
        &format!("{PROJECTS}/1/members"),
        Some(SERVICE_TOKEN),
        None,
    )?;
    assert_eq!(ids(&r.json(), "members", "member_id"), vec![1, 2]);
    assert_eq!(r.json()["members"][1]["email"], "bob@acme.test");

    let p = create(&mut c, SERVICE_TOKEN, &json!({"name": "Apollo", "x": 1}))?;
    assert_eq!(
        (p["description"].as_str(), p["member_count"].as_u64()),
        (Some(""), Some(0))
    );
    let created = p["created_at"].as_str().unwrap_or("");
    assert!(created.ends_with('Z') && created.len() == 20, "{created}");
    let id = p["id"].as_i64().ok_or("id")?;
    let path = format!("{PROJECTS}/{id}");

    for (body, status, code) in [
        (json!({"name": "LAUNCH"}), 409, "name_taken"),
        (json!({"name": ""}), 422, "invalid"),
        (json!({"description": "no name"}), 422, "invalid"),
    ] {
        let r = c.call("POST", PROJECTS, Some(SERVICE_TOKEN), Some(&body))?;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (status, code),
            "{body}"
        );
        let r = c.call("PUT", &path, Some(SERVICE_TOKEN), Some(&body))?;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (status, code),
            "PUT {body}"
        );
    }
    let rename = json!({"name": "Gemini", "description": "second", "extra": true});
    let r = c.call("PUT", &path, Some(SERVICE_TOKEN), Some(&rename))?;
    let v = r.json();
    assert_eq!((r.status, v["name"].as_str()), (200, Some("Gemini")));
    assert_eq!(
        (v["description"].as_str(), v["created_at"].as_str()),
        (Some("second"), Some(created))
    );
    let r = c.call(
        "PUT",
        &path,
        Some(SERVICE_TOKEN),
        Some(&json!({"name": "GEMINI"})),
    )?;
    let v = r.json();
    assert_eq!(
        (r.status, v["name"].as_str()),
        (200, Some("GEMINI")),
        "own name in another case"
    );
    assert_eq!(v["description"], "second", "an absent description is kept");
    let r = c.call("GET", &path, Some(SERVICE_TOKEN), None)?;
    assert_eq!((r.status, r.json()["name"].as_str()), (200, Some("GEMINI")));

    let r = c.call(
        "PUT",
        &format!("{path}/members/3"),
        Some(SERVICE_TOKEN),
        None,
    )?;
    assert_eq!(r.status, 204);
    let r = c.call("DELETE", &path, Some(SERVICE_TOKEN), None)?;
    assert_eq!((r.status, r.body.len()), (204, 0));
    for method in ["GET", "DELETE"] {
        let r = c.call(method, &path, Some(SERVICE_TOKEN), None)?;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (404, "not_found"),
            "{method}"
        );
    }
    let r = c.call(
        "PUT",
        &path,
        Some(SERVICE_TOKEN),
        Some(&json!({"name": "Z"})),
    )?;
    assert_eq!(r.status, 404);
    let r = c.call(
        "GET",
        "/api/teams/acme/members/3/projects",
        Some(SERVICE_TOKEN),
        None,
    )?;
    assert_eq!(
        r.json(),
        json!({"projects": []}),
        "the membership went with the project"
    );
    let r = c.call(
        "POST",
        PROJECTS,
        Some(SERVICE_TOKEN),
        Some(&json!({"name": "Gemini"})),
    )?;
    assert_eq!(r.status, 201, "a deleted project's name is free again");
    Ok(())
}

#[test]
fn listing_pages_and_name_filter() -> TestResult {
    let server = TestServer::start("projects-list")?;
    let mut c = server.client()?;
    for i in 0..4 {
        create(&mut c, SERVICE_TOKEN, &json!({"name": format!("P{i}")}))?;
    }
    let mut seen = Vec::new();
    for page in 1..=3 {
        let r = c.call(
            "GET",
            &format!("{PROJECTS}?page={page}&per_page=2"),
            Some(SERVICE_TOKEN),
            None,
        )?;
        let v = r.json();
        assert_eq!(
            (v["total"].as_u64(), v["per_page"].as_u64()),
            (Some(5), Some(2))
        );
        seen.extend(ids(&v, "projects", "id"));
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 5]);
    let r = c.call(
        "GET",
        &format!("{PROJECTS}?name=p2"),
        Some(SERVICE_TOKEN),
        None,
    )?;
    let v = r.json();
    assert_eq!(
        (v["total"].as_u64(), v["projects"][0]["name"].as_str()),
        (Some(1), Some("P2"))
    );
    let r = c.call(
        "GET",
        &format!("{PROJECTS}?name=P"),
        Some(SERVICE_TOKEN),
        None,
    )?;
    assert_eq!(r.json()["total"], 0, "exact names only");
    let r = c.call(
        "GET",
        &format!("{PROJECTS}?page=0"),
        Some(SERVICE_TOKEN),
        None,
    )?;
    assert_eq!(r.status, 422);
    let r = c.call(
        "GET",
        "/api/teams/globex/projects",
        Some(SERVICE_TOKEN),
        None,
    )?;
    assert_eq!(r.json()["total"], 0, "projects are per team");

    let path = format!("{PROJECTS}/1/members");
    create_members(&mut c, 3)?;
    for id in 4..=6 {
        let r = c.call("PUT", &format!("{path}/{id}"), Some(SERVICE_TOKEN), None)?;
        assert_eq!(r.status, 204);
    }
    let mut seen = Vec::new();
    for page in 1..=3 {
        let r = c.call(
            "GET",
            &format!("{path}?page={page}&per_page=2"),
            Some(SERVICE_TOKEN),
            None,
        )?;
        assert_eq!(r.json()["total"], 5);
        seen.extend(ids(&r.json(), "members", "member_id"));
    }
    assert_eq!(seen, vec![1, 2, 4, 5, 6]);
    let r = c.call(
        "GET",
        "/api/teams/acme/projects/99/members",
        Some(SERVICE_TOKEN),
        None,
    )?;
    assert_eq!(r.status, 404);
    Ok(())
}

/// Creates `n` members of acme (ids 4, 5, ...) with the demo password.
fn create_members(c: &mut Client, n: usize) -> TestResult {
    for i in 0..n {
        let body = json!({"email": format!("m{i}@acme.test"), "password": PASSWORD});
        let r = c.call(
            "POST",
            "/api/teams/acme/members",
            Some(SERVICE_TOKEN),
            Some(&body),
        )?;
        assert_eq!(r.status, 201);
    }
    Ok(())
}

#[test]
fn memberships_are_idempotent_and_stay_in_the_team() -> TestResult {
    let server = TestServer::start("projects-members")?;
    let mut c = server.client()?;
    let carol = "/api/teams/acme/projects/1/members/3";
    for _ in 0..2 {
        let r = c.call("PUT", carol, Some(SERVICE_TOKEN), None)?;
        assert_eq!((r.status, r.body.len()), (204, 0));
    }
    let r = c.call(
        "GET",
        "/api/teams/acme/projects/1",
        Some(SERVICE_TOKEN),
        None,
    )?;
    assert_eq!(r.json()["member_count"], 3);
    for _ in 0..2 {
        let r = c.call("DELETE", carol, Some(SERVICE_TOKEN), None)?;
        assert_eq!(r.status, 204);
    }
    let r = c.call(
        "GET",
        "/api/teams/acme/projects/1",
        Some(SERVICE_TOKEN),
        None,
    )?;
    assert_eq!(r.json()["member_count"], 2);

    let body = json!({"email": "zed@globex.test"});
    let r = c.call(
        "POST",
        "/api/teams/globex/members",
        Some(SERVICE_TOKEN),
        Some(&body),
    )?;
    let zed = r.json()["id"].as_i64().ok_or("id")?;
    let r = c.call(
        "PUT",
        &format!("/api/teams/acme/projects/1/members/{zed}"),
        Some(SERVICE_TOKEN),
        None,
    )?;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (422, "invalid"),
        "member of another team"
    );
    assert!(r.json()["message"]
        .as_str()
        .unwrap_or("")
        .contains("not a member of team acme"));
    let r = c.call(
        "PUT",
        "/api/teams/acme/projects/1/members/999",
        Some(SERVICE_TOKEN),
        None,
    )?;
    assert_eq!(r.status, 422, "no such member");
    for method in ["PUT", "DELETE"] {
        let r = c.call(
            method,
            "/api/teams/acme/projects/99/members/3",
            Some(SERVICE_TOKEN),
            None,
        )?;
        assert_eq!(r.status, 404, "{method} on an absent project");
        let r = c.call(
            method,
            "/api/teams/globex/projects/1/members/3",
            Some(SERVICE_TOKEN),
            None,
        )?;
        assert_eq!(r.status, 404, "{method} on a project of another team");
    }
    let r = c.call(
        "DELETE",
        &format!("/api/teams/acme/projects/1/members/{zed}"),
        Some(SERVICE_TOKEN),
        None,
    )?;
    assert_eq!(r.status, 204, "not a member: still 204");
    let r = c.call(
        "GET",
        "/api/teams/globex/projects/1",
        Some(SERVICE_TOKEN),
        None,
    )?;
    assert_eq!(r.status, 404);
    let r = c.call(
        "POST",
        "/api/teams/acme/projects/1/members/3",
        Some(SERVICE_TOKEN),
        None,
    )?;
    assert_eq!((r.status, r.header("allow")), (405, Some("PUT, DELETE")));
    Ok(())
}

#[test]
fn permissions_and_self_service() -> TestResult {
    let server = TestServer::start("projects-perms")?;
    let mut c = server.client()?;
    let admin = session(&mut c, "admin@acme.test", PASSWORD)?;
    let bob = session(&mut c, "bob@acme.test", PASSWORD)?;
    for (method, path) in [
        ("GET", PROJECTS.to_owned()),
        ("POST", PROJECTS.to_owned()),
        ("GET", format!("{PROJECTS}/1")),
        ("PUT", format!("{PROJECTS}/1")),
        ("DELETE", format!("{PROJECTS}/1")),
        ("GET", format!("{PROJECTS}/1/members")),
        ("PUT", format!("{PROJECTS}/1/members/3")),
        ("DELETE", format!("{PROJECTS}/1/members/1")),
        ("GET", "/api/teams/acme/members/3/projects".to_owned()),
    ] {
        let r = c.call(method, &path, Some(&bob), Some(&json!({"name": "X"})))?;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (403, "forbidden"),
            "{method} {path}"
        );
    }
    let r = c.call(
        "GET",
        "/api/teams/acme/members/2/projects",
        Some(&bob),
        None,
    )?;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"projects": [{"id": 1, "name": "Launch"}]}))
    );
    let r = c.call(
        "GET",
        "/api/teams/acme/members/99/projects",
        Some(&admin),
        None,
    )?;
    assert_eq!(r.status, 404);

    create(&mut c, &admin, &json!({"name": "Admin's"}))?;
    let r = c.call(
        "PUT",
        &format!("{PROJECTS}/2/members/2"),
        Some(&admin),
        None,
    )?;
    assert_eq!(r.status, 204);
    let r = c.call(
        "DELETE",
        &format!("{PROJECTS}/2/members/2"),
        Some(&admin),
        None,
    )?;
    assert_eq!(
        r.status, 204,
        "an admin removes a member with their own session"
    );
    let r = c.call(
        "GET",
        "/api/teams/acme/members/2/projects",
        Some(&admin),
        None,
    )?;
    assert_eq!(ids(&r.json(), "projects", "id"), vec![1]);

    let r = c.call(
        "DELETE",
        "/api/projects/1/members/me",
        Some(SERVICE_TOKEN),
        None,
    )?;
    assert_eq!(r.status, 403, "the service token is nobody");
    let r = c.call(
        "POST",
        "/api/teams/globex/projects",
        Some(SERVICE_TOKEN),
        Some(&json!({"name": "G"})),
    )?;
    let globex = r.json()["id"].as_i64().ok_or("id")?;
    let r = c.call(
        "DELETE",
        &format!("/api/projects/{globex}/members/me"),
        Some(&bob),
        None,
    )?;
    assert_eq!(r.status, 404, "a project of another team");
    for _ in 0..2 {
        let r = c.call("DELETE", "/api/projects/1/members/me", Some(&bob), None)?;
        assert_eq!(r.status, 204);
    }
    let r = c.call(
        "GET",
        "/api/teams/acme/members/2/projects",
        Some(&bob),
        None,
    )?;
    assert_eq!(r.json(), json!({"projects": []}));
    Ok(())
}

#[test]
fn deleting_a_member_ends_their_memberships() -> TestResult {
    let server = TestServer::start("projects-cascade")?;
    let mut c = server.client()?;
    let bob = session(&mut c, "bob@acme.test", PASSWORD)?;
    let r = c.call(
        "PUT",
        "/api/teams/acme/projects/1/members/3",
        Some(SERVICE_TOKEN),
        None,
    )?;
    assert_eq!(r.status, 204);
    let r = c.call(
        "DELETE",
        "/api/teams/acme/members/3",
        Some(SERVICE_TOKEN),
        None,
    )?;
    assert_eq!(r.status, 204);
    let r = c.call("DELETE", "/api/teams/acme/members/me", Some(&bob), None)?;
    assert_eq!(r.status, 204);
    let r = c.call(
        "GET",
        "/api/teams/acme/projects/1/members",
        Some(SERVICE_TOKEN),
        None,
    )?;
    assert_eq!(ids(&r.json(), "members", "member_id"), vec![1]);
    assert_eq!(r.json()["total"], 1);
    Ok(())
}
