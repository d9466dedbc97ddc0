//! The test backends' scimgate configs (`tests/fixtures/*.toml`) as scimgate's own loader reads
//! them: the shapes the end-to-end tests rely on. The backends themselves are exercised only
//! through the gateway (`alt.rs`, `tenants.rs`, ...).

use std::path::Path;

const ORG: &str = "globex-org";

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn alt_config_fixture_loads() -> TestResult {
    use scimgate::backend::spec::{Paging, WriteOn};

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alt.toml");
    let config = scimgate::config::from_str(include_str!("../fixtures/alt.toml"), &path)
        .map_err(|e| e.to_string())?;
    let users = &config.users;
    assert!(matches!(
        &users.list.paging,
        Paging::Offset { offset, size } if offset == "offset" && size == "limit"
    ));
    assert_eq!(users.list.max_size, 50);
    assert_eq!(users.list.results, "/data");
    assert_eq!(users.list.total.as_deref(), Some("/meta/total"));
    assert_eq!(users.create.body, "/account");
    assert_eq!(users.update.call.method, http::Method::PATCH);
    assert!(users.deactivate.is_some() && users.reactivate.is_some());
    let filters: Vec<(String, &str)> = users
        .filters
        .iter()
        .map(|f| (f.target.attr.canonical(), f.param.as_str()))
        .collect();
    assert_eq!(filters, [("userName".to_owned(), "login")]);
    let active = users
        .fields
        .iter()
        .find(|f| f.native == ["active"])
        .ok_or("no active field")?;
    assert_eq!(active.on, WriteOn::Never);
    let Some(scimgate::backend::settings::BackendAuth::Header(auth)) = config.backend.auth.as_ref()
    else {
        return Err("no backend header auth".into());
    };
    assert_eq!(auth.header.as_str(), "x-api-key");
    assert_eq!(auth.scheme, None);
    assert_eq!(auth.token_env, "SCIMGATE_ALT_API_KEY");
    assert_eq!(config.tenants.len(), 1);
    assert_eq!(config.tenants[0].name, "globex");
    assert_eq!(config.tenants[0].backend_name, ORG);
    Ok(())
}

#[test]
fn lax_config_fixture_has_two_tenants_and_no_uniqueness_rule() -> TestResult {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lax.toml");
    let config = scimgate::config::from_str(include_str!("../fixtures/lax.toml"), &path)
        .map_err(|e| e.to_string())?;
    // Without a rule answering `uniqueness` the gateway checks userNames itself: the uniqueness
    // tests exercise exactly that.
    assert!(config.users.errors.is_empty());
    let names: Vec<(&str, &str)> = config
        .tenants
        .iter()
        .map(|t| (t.name.as_str(), t.backend_name.as_str()))
        .collect();
    assert_eq!(names, [("umbrella", "umbrella-ws"), ("wayne", "wayne-ws")]);
    assert!(config.guard.is_some());
    Ok(())
}

#[test]
fn alt_user_groups_config_fixture_loads() -> TestResult {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alt-user-groups.toml");
    scimgate::config::from_str(include_str!("../fixtures/alt-user-groups.toml"), &path)
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The fixture's settings without comments and without its `[groups.members]` table.
fn without_members(text: &str) -> (Vec<&str>, Vec<&str>) {
    let mut rest = Vec::new();
    let mut members = Vec::new();
    let mut in_members = false;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if line.starts_with('[') {
            in_members = line == "[groups.members]";
        }
        if in_members {
            members.push(line);
        } else {
            rest.push(line);
        }
    }
    (rest, members)
}

#[test]
fn alt_fixtures_differ_only_in_where_group_members_are_kept() {
    use super::alt_upstream::{ALT, ALT_USER_GROUPS};

    let (alt, on_team) = without_members(ALT);
    let (user_groups, on_user) = without_members(ALT_USER_GROUPS);
    assert_eq!(alt, user_groups);
    assert!(alt.contains(&"[groups]"), "{alt:?}");
    assert_eq!(
        on_team,
        [
            "[groups.members]",
            "model = \"group_field\"",
            "field = \"member_ids\"",
            "native_type = \"string\"",
            ""
        ]
    );
    assert_eq!(
        on_user,
        [
            "[groups.members]",
            "model = \"user_field\"",
            "field = \"team_ids\"",
            "native_type = \"string\"",
            "search = \"team\"",
            ""
        ]
    );
}

#[test]
fn alt_upstream_configs_keep_the_groups_part() {
    use super::alt_upstream::{alt_toml, alt_toml_from, ALT_USER_GROUPS};

    let dir = tempfile::tempdir().expect("tempdir");
    let listen = "127.0.0.1:1".parse().expect("addr");
    let backend = "[backend]\naddress = \"127.0.0.1:2\"\n";
    for (text, model) in [
        (alt_toml(backend, &[], listen, dir.path()).0, "group_field"),
        (
            alt_toml_from(ALT_USER_GROUPS, backend, &[], listen, dir.path()).0,
            "user_field",
        ),
    ] {
        let users = text.find("\n[users]\n").expect("[users]");
        let groups = text.find("\n[groups]\n").expect("[groups]");
        assert!(users < groups, "{text}");
        assert!(text.contains(&format!("model = \"{model}\"")), "{text}");
        assert!(text.contains("address = \"127.0.0.1:2\""), "{text}");
    }
}
