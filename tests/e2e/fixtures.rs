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
