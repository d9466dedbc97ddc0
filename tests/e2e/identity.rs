//! The guard's identity modes (`jwt`, `header`, `whoami`) in front of the sloppy app
//! (`tests/support/sloppy_backend.rs`), which reads identity from more places and more leniently
//! than the guard. bob and dave are SCIM-managed; carol is not; the admin runs team `acme`. Each
//! attempt by (or on behalf of) bob to change his password or email or leave the team must leave
//! his account exactly as it was, in every mode the attack applies to; the controls show that
//! carol can still change her own account and the admin can still remove bob.

use super::harness::Gateway;
use super::http::Reply;
use super::sloppy_backend::{self, Account, SloppyBackend, JWT_SECRET, JWT_SECRET_ENV};
use jsonwebtoken::{encode, EncodingKey, Header};
use scimgate::store::engine::StoreSettings;
use serde_json::{json, Value};
use std::path::Path;

/// How the gateway identifies callers in a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Jwt,
    Header,
    Whoami,
}

const MODES: [Mode; 3] = [Mode::Jwt, Mode::Header, Mode::Whoami];

fn identity_section(mode: Mode, edge: bool) -> String {
    match mode {
        Mode::Jwt => format!(
            "[guard.identity]\nsource = \"jwt\"\njwt_secret_env = \"{JWT_SECRET_ENV}\"\nclaim = \"sub\"\ntenant_claim = \"team\"\n"
        ),
        Mode::Header => format!(
            "[guard.identity]\nsource = \"header\"\nheader = \"X-User-Id\"\ntenant_header = \"X-Team\"\nedge = {edge}\n"
        ),
        Mode::Whoami => "[guard.identity]\nsource = \"whoami\"\nwhoami = { method = \"GET\", path = \"/api/me\" }\nid_field = \"id\"\ntenant_field = \"team\"\ncache_seconds = 0\n".into(),
    }
}

/// The gateway, the app and its people.
struct World {
    gw: Gateway,
    app: SloppyBackend,
    mode: Mode,
    bob: String,
    dave: String,
    carol: String,
    admin: String,
}

/// The sloppy fixture's text with the identity section of `mode`.
fn fixture_text(mode: Mode, edge: bool) -> String {
    std::env::set_var(
        "SCIMGATE_SLOPPY_SERVICE_TOKEN",
        sloppy_backend::SERVICE_TOKEN,
    );
    std::env::set_var(JWT_SECRET_ENV, JWT_SECRET);
    let fixture = include_str!("../fixtures/sloppy.toml");
    let end = fixture
        .find("\n# The caller's identity.")
        .expect("the fixture's identity section");
    fixture[..end].to_string() + "\n" + &identity_section(mode, edge)
}

fn config_for(mode: Mode, edge: bool) -> scimgate::config::Config {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sloppy.toml");
    scimgate::config::from_str(&fixture_text(mode, edge), &file).unwrap_or_else(|e| panic!("{e}"))
}

fn world(mode: Mode, edge: bool) -> World {
    world_from(mode, fixture_text(mode, edge))
}

/// The world over a fixture `text` (the sloppy fixture, changed).
fn world_from(mode: Mode, text: String) -> World {
    let app = SloppyBackend::new();
    let gw = Gateway::fixture(
        "sloppy.toml",
        &text,
        "acme",
        |_| {},
        |addr| app.service(addr),
    );
    let create = |email: &str| {
        let r = gw.scim(
            "POST",
            "/Users",
            Some(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": email})),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["id"].as_str().expect("id").to_string()
    };
    let bob = create("bob@acme.test");
    app.force_next_id("usr_dave");
    let dave = create("dave@acme.test");
    let carol = app.add("carol@acme.test", Some("acme"), false);
    assert_eq!((bob.as_str(), dave.as_str()), ("2", "usr_dave"));
    World {
        gw,
        app,
        mode,
        bob,
        dave,
        carol,
        admin: "1".into(),
    }
}

/// An HS256 token with these claims, signed with the shared secret.
fn jwt(claims: &Value) -> String {
    let key = EncodingKey::from_secret(JWT_SECRET.as_bytes());
    encode(&Header::default(), claims, &key).expect("sign")
}

/// A token whose payload is this exact JSON text (for repeated claim names).
fn jwt_raw(payload: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let message = format!(
        "{}.{}",
        b64.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64.encode(payload)
    );
    let key = EncodingKey::from_secret(JWT_SECRET.as_bytes());
    let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
        .expect("sign");
    format!("{message}.{sig}")
}

/// The credentials `id` presents in `mode` (team `acme`).
fn credentials(w: &World, id: &str) -> Vec<(String, String)> {
    match w.mode {
        Mode::Jwt => vec![(
            "Authorization".into(),
            format!("Bearer {}", jwt(&json!({"sub": id, "team": "acme"}))),
        )],
        Mode::Header => vec![
            ("X-User-Id".into(), id.into()),
            ("X-Team".into(), "acme".into()),
        ],
        Mode::Whoami => vec![("Cookie".into(), format!("sid={}", w.app.session_for(id)))],
    }
}

/// The three changes the guard must stop for a managed member.
#[derive(Debug, Clone, Copy)]
enum Action {
    Password,
    Email,
    Leave,
}

const ACTIONS: [Action; 3] = [Action::Password, Action::Email, Action::Leave];

/// Sends `action` on `subject`'s account with `headers`, and `query` appended to the target.
fn act(
    w: &World,
    action: Action,
    subject: &str,
    headers: &[(String, String)],
    query: &str,
) -> Reply {
    let sep = |t: String| {
        if query.is_empty() {
            t
        } else {
            format!("{t}?{query}")
        }
    };
    let (method, target, body) = match action {
        Action::Password => (
            "PUT",
            sep("/api/me/password".into()),
            json!({"password": "pwned"}),
        ),
        Action::Email => (
            "PATCH",
            sep(format!("/api/users/{subject}")),
            json!({"email": "pwned@evil.test"}),
        ),
        Action::Leave => (
            "DELETE",
            sep(format!("/api/teams/acme/members/{subject}")),
            Value::Null,
        ),
    };
    let mut h: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let body = (!body.is_null()).then(|| body.to_string());
    if body.is_some() {
        h.push(("Content-Type", "application/json"));
    }
    w.gw.request(method, &target, &h, body.as_deref().map(str::as_bytes))
}

/// Runs every action with `headers`/`query` on `subject` and asserts each was refused and left
/// the account as it was.
fn assert_all_refused(
    w: &World,
    case: &str,
    subject: &str,
    headers: &[(String, String)],
    query: &str,
) {
    for action in ACTIONS {
        let before = w.app.account(subject);
        let r = act(w, action, subject, headers, query);
        let after = w.app.account(subject);
        assert!(
            matches!(r.status, 400 | 401 | 403),
            "{:?} {case} {action:?}: {} {}",
            w.mode,
            r.status,
            r.text()
        );
        assert_eq!(
            before, after,
            "{:?} {case} {action:?} changed the account",
            w.mode
        );
    }
}

fn unchanged(a: &Account, email: &str) {
    assert_eq!(
        (a.password.as_str(), a.email.as_str(), a.team.as_deref()),
        ("initial", email, Some("acme"))
    );
}

#[test]
fn controls_hold_in_every_mode() {
    for mode in MODES {
        let w = world(mode, false);
        let carol = credentials(&w, &w.carol);
        assert_eq!(
            act(&w, Action::Password, &w.carol, &carol, "").status,
            204,
            "{mode:?}"
        );
        assert_eq!(w.app.account(&w.carol).password, "pwned", "{mode:?}");
        assert_all_refused(&w, "bob himself", &w.bob, &credentials(&w, &w.bob), "");
        unchanged(&w.app.account(&w.bob), "bob@acme.test");
        let admin = credentials(&w, &w.admin);
        let r = act(&w, Action::Leave, &w.bob, &admin, "");
        assert_eq!(r.status, 204, "{mode:?} admin removes bob: {}", r.text());
        assert_eq!(w.app.account(&w.bob).team, None, "{mode:?}");
    }
}

/// Class 1: the backend must act on the identity the guard decided on.
#[test]
fn a_second_credential_or_a_nominated_header_is_refused() {
    for mode in MODES {
        let w = world(mode, false);
        let carol = credentials(&w, &w.carol);
        let bob_token = jwt(&json!({"sub": w.bob, "team": "acme"}));
        let bob_sid = w.app.session_for(&w.bob);
        let credential_header = carol[0].0.clone();
        let with = |extra: &[(&str, String)]| {
            let mut h = carol.clone();
            h.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
            h
        };
        for param in ["access_token", "token", "Access_Token"] {
            let q = format!("{param}={bob_token}");
            assert_all_refused(
                &w,
                &format!("carol's credential + ?{param}=bob"),
                &w.bob,
                &carol,
                &q,
            );
        }
        let q = format!("access_token={bob_token}");
        for nominated in [
            credential_header.clone(),
            credential_header.to_lowercase(),
            "Cookie".into(),
        ] {
            let h = with(&[("Connection", nominated.clone())]);
            assert_all_refused(&w, &format!("Connection: {nominated}"), &w.bob, &h, &q);
            assert_all_refused(
                &w,
                &format!("Connection: {nominated}, no query"),
                &w.bob,
                &h,
                "",
            );
        }
        if mode == Mode::Jwt {
            let h = with(&[("Cookie", format!("sid={bob_sid}"))]);
            assert_all_refused(
                &w,
                "carol's credential + bob's session cookie",
                &w.bob,
                &h,
                "",
            );
        }
        unchanged(&w.app.account(&w.bob), "bob@acme.test");
    }
}

/// Class 1: the buffered path (a guarded body the gateway reads) and the streaming path forward
/// the same headers: neither forwards one that `Connection` nominates.
#[test]
fn buffered_and_streamed_requests_forward_the_same_headers() {
    let w = world(Mode::Whoami, false);
    let carol = credentials(&w, &w.carol);
    let mut h: Vec<(&str, &str)> = carol
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    h.extend([("Connection", "X-Hop"), ("X-Hop", "1"), ("X-End", "1")]);
    w.app.take_seen_headers();
    let streamed =
        w.gw.request("GET", &format!("/api/users/{}", w.carol), &h, None);
    assert_eq!(streamed.status, 200, "{}", streamed.text());
    let body = json!({"given": "Carol"}).to_string();
    h.push(("Content-Type", "application/json"));
    let buffered = w.gw.request(
        "PATCH",
        &format!("/api/users/{}", w.carol),
        &h,
        Some(body.as_bytes()),
    );
    assert_eq!(buffered.status, 200, "{}", buffered.text());
    let seen = w.app.take_seen_headers();
    let last_two: Vec<&Vec<String>> = seen.iter().rev().take(2).collect();
    for names in last_two {
        assert!(names.contains(&"x-end".to_string()), "{names:?}");
        assert!(!names.contains(&"x-hop".to_string()), "{names:?}");
    }
}

/// Class 2: ids in any lenient spelling of a managed user are refused (or recognised).
#[test]
fn lenient_spellings_of_a_managed_id_do_not_pass() {
    for mode in [Mode::Jwt, Mode::Header] {
        let w = world(mode, false);
        let spellings: Vec<Value> = vec![
            json!("02"),
            json!("+2"),
            json!("2.0"),
            json!("2e0"),
            json!("２"),
            json!("0x2"),
            json!(2.0),
            json!("USR_DAVE"),
            json!("Usr_Dave"),
        ];
        for sub in spellings {
            let subject = if sub.as_str().is_some_and(|s| s.to_lowercase() == "usr_dave") {
                w.dave.clone()
            } else {
                w.bob.clone()
            };
            let creds = match mode {
                Mode::Jwt => vec![(
                    "Authorization".to_string(),
                    format!("Bearer {}", jwt(&json!({"sub": sub, "team": "acme"}))),
                )],
                _ => {
                    let text = sub.as_str().map(str::to_string).unwrap_or(sub.to_string());
                    vec![
                        ("X-User-Id".to_string(), text),
                        ("X-Team".to_string(), "acme".to_string()),
                    ]
                }
            };
            assert_all_refused(&w, &format!("sub {sub}"), &subject, &creds, "");
        }
        if mode == Mode::Jwt {
            for payload in [
                r#"{"sub":"2","sub":"3","team":"acme"}"#,
                r#"{"SUB":"2","sub":"3","team":"acme"}"#,
            ] {
                let creds = vec![(
                    "Authorization".to_string(),
                    format!("Bearer {}", jwt_raw(payload)),
                )];
                assert_all_refused(&w, payload, &w.bob, &creds, "");
            }
        }
        unchanged(&w.app.account(&w.bob), "bob@acme.test");
        unchanged(&w.app.account(&w.dave), "dave@acme.test");
    }
}

/// Class 3: a tenant that names no configured tenant, or another one, does not make a managed
/// account unmanaged.
#[test]
fn an_unknown_or_other_tenant_does_not_fail_open() {
    for mode in [Mode::Jwt, Mode::Header] {
        let w = world(mode, false);
        for team in ["nonexistent", "globex", ""] {
            let creds = match mode {
                Mode::Jwt => vec![(
                    "Authorization".to_string(),
                    format!("Bearer {}", jwt(&json!({"sub": w.bob, "team": team}))),
                )],
                _ => vec![
                    ("X-User-Id".to_string(), w.bob.clone()),
                    ("X-Team".to_string(), team.to_string()),
                ],
            };
            assert_all_refused(&w, &format!("team {team:?}"), &w.bob, &creds, "");
        }
        unchanged(&w.app.account(&w.bob), "bob@acme.test");
    }
}

/// Class 3 with `all_members_managed`: every member of acme (which has a SCIM key) is managed,
/// and so is a caller whose tenant names no configured tenant; a member of globex (no SCIM key)
/// is not.
#[test]
fn all_members_managed_decides_by_the_callers_tenant_and_fails_closed_on_unknown_ones() {
    let text = fixture_text(Mode::Jwt, false).replace(
        "[guard]\nsession_cookies",
        "[guard]\nall_members_managed = true\nsession_cookies",
    );
    let w = world_from(Mode::Jwt, text);
    let as_carol = |team: &str| {
        let token = jwt(&json!({"sub": w.carol, "team": team}));
        vec![("Authorization".to_string(), format!("Bearer {token}"))]
    };
    for team in ["acme", "ACME", "nonexistent"] {
        assert_all_refused(
            &w,
            &format!("carol of {team}"),
            &w.carol,
            &as_carol(team),
            "",
        );
    }
    unchanged(&w.app.account(&w.carol), "carol@acme.test");
    let r = act(&w, Action::Password, &w.carol, &as_carol("globex"), "");
    assert_eq!(
        r.status,
        204,
        "a member of a tenant without SCIM: {}",
        r.text()
    );
    assert_eq!(w.app.account(&w.carol).password, "pwned");
}

/// Class 4: at the edge, no spelling of the identity headers reaches the app, on any route.
#[test]
fn every_spelling_of_the_edge_headers_is_stripped_everywhere() {
    let w = world(Mode::Header, true);
    for name in [
        "X-User-Id",
        "x_user_id",
        "X_User_Id",
        "X-User_Id",
        "x-user_id",
    ] {
        for tenant in ["X-Team", "X_Team"] {
            let h = [(name, w.bob.as_str()), (tenant, "acme")];
            w.app.take_seen_headers();
            let r = w.gw.request("GET", "/api/me", &h, None);
            assert_eq!(r.status, 401, "{name}: the app must not see an identity");
            for names in w.app.take_seen_headers() {
                assert!(
                    !names
                        .iter()
                        .any(|n| matches!(n.replace('_', "-").as_str(), "x-user-id" | "x-team")),
                    "{name}/{tenant} reached the app: {names:?}"
                );
            }
            let creds: Vec<(String, String)> = h
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_all_refused(&w, name, &w.bob, &creds, "");
        }
    }
    unchanged(&w.app.account(&w.bob), "bob@acme.test");
}

/// Class 5: `exp` / `nbf` that are not integers refuse the token (here an unmanaged member's,
/// which the app would otherwise accept however stale).
#[test]
fn tokens_with_malformed_times_are_refused() {
    let w = world(Mode::Jwt, false);
    for bad in [json!(1.5), json!(-1), json!("1"), json!(true), json!(null)] {
        for claim in ["exp", "nbf"] {
            let token = jwt(&json!({"sub": w.carol, "team": "acme", claim: bad.clone()}));
            let creds = vec![("Authorization".to_string(), format!("Bearer {token}"))];
            let r = act(&w, Action::Password, &w.carol, &creds, "");
            assert_eq!(r.status, 401, "{claim} = {bad}: {}", r.text());
            assert_eq!(
                w.app.account(&w.carol).password,
                "initial",
                "{claim} = {bad}"
            );
        }
    }
}

/// Class 5: an empty JWT secret refuses to start.
#[test]
fn an_empty_jwt_secret_refuses_to_start() {
    let mut config = config_for(Mode::Jwt, false);
    let dir = tempfile::tempdir().expect("tempdir");
    config.store = StoreSettings::Sqlite(dir.path().join("s.sqlite"));
    let scimgate::guard::rules::IdentitySource::Jwt { settings, .. } =
        &mut config.guard.as_mut().expect("guard").identity
    else {
        panic!("jwt mode");
    };
    let var = "SCIMGATE_E2E_EMPTY_JWT_SECRET";
    std::env::set_var(var, "");
    settings.key = scimgate::guard::jwt::JwtKey::SecretEnv(var.into());
    let err = scimgate::Gateway::new(config, None).err().expect("refused");
    assert!(err.to_string().contains("empty"), "{err}");

    let file = dir.path().join("scimgate.toml");
    let text = fixture_text(Mode::Jwt, false).replace(JWT_SECRET_ENV, var);
    std::fs::write(&file, text).expect("write config");
    let said = scimgate::commands::check(&file).expect("valid file");
    assert!(
        said.contains(&format!(
            "warning: guard.identity.jwt_secret_env names {var}"
        )),
        "{said}"
    );
    std::env::set_var(var, "a-real-secret");
    let said = scimgate::commands::check(&file).expect("valid file");
    assert!(!said.contains(var), "{said}");
}
