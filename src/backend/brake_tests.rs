//! Unit tests of what the brake on mass deprovisioning counts, through [`Directory`] over a
//! [`FakeBackend`] and the real SQLite store, no sockets: a change of `active` to false on an
//! active user and a delete of an existing user count; a write that leaves `active` alone, a
//! repeated deactivation and a delete of an unknown id do not; a held deprovisioning makes no
//! backend write, and the tenant that tripped is named in one alert line.

use super::directory::Directory;
use super::directory_tests::capture_logs;
use super::fake::{alt_api, FakeBackend, Op};
use crate::auth::Tenant;
use crate::brake::settings::{BrakePolicy, BrakeSettings};
use crate::brake::Brake;
use crate::scim::normalize::normalize_user;
use crate::service::{Replacement, UserDirectory};
use crate::store::brake::Thresholds;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;
use crate::telemetry::Telemetry;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const NOW: &str = "2026-12-04T10:00:00Z";

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    backend: Arc<FakeBackend>,
    directory: Directory,
    tenant: Tenant,
}

/// A directory whose brake lets two deprovisionings through per hour.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("s.sqlite")).expect("store"));
    let backend = Arc::new(FakeBackend::new(alt_api(true)));
    let settings = BrakeSettings {
        default: Some(BrakePolicy {
            thresholds: Thresholds {
                max_count: 2,
                max_percent: None,
                min_count: 0,
                window_secs: 3600,
            },
            retry_after_secs: 30,
        }),
        ..BrakeSettings::default()
    };
    let telemetry = Arc::new(Telemetry::new(None, 10, Duration::from_secs(60)).expect("telemetry"));
    let brake = Arc::new(Brake::new(settings, store.clone(), telemetry));
    let directory = Directory::new(backend.clone(), store.clone(), 100).with_brake(brake);
    Fixture {
        _dir: dir,
        store,
        backend,
        directory,
        tenant: Tenant {
            name: "globex".into(),
            backend_name: "globex-org".into(),
        },
    }
}

fn user(name: &str, active: Option<bool>) -> Value {
    let mut body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": format!("{name}@contoso.com"),
        "name": {"givenName": name, "familyName": "Smith"},
    });
    if let Some(a) = active {
        body["active"] = json!(a);
    }
    normalize_user(&body).expect("valid user")
}

impl Fixture {
    async fn create(&self, name: &str, active: bool) -> String {
        let u = user(name, Some(active));
        let id = self
            .directory
            .create(&self.tenant, u, NOW)
            .await
            .expect("create")
            .id;
        self.backend.clear_calls();
        id
    }

    async fn put(&self, id: &str, name: &str, active: Option<bool>) -> u16 {
        let r = match self.directory.lock_and_read(&self.tenant, id).await {
            Ok((_held, Some(current))) => {
                self.directory
                    .write(
                        &self.tenant,
                        current,
                        user(name, active),
                        NOW,
                        Replacement::Put,
                    )
                    .await
            }
            Ok((_, None)) => return 404,
            Err(e) => Err(e),
        };
        r.map_or_else(|e| e.status, |_| 200)
    }

    async fn delete(&self, id: &str) -> u16 {
        let r = self.directory.delete(&self.tenant, id).await;
        r.map_or_else(|e| e.status, |()| 204)
    }

    async fn counted(&self) -> (u64, u64) {
        let brakes = self.store.brakes(Some("globex")).await.expect("brakes");
        brakes
            .first()
            .map_or((0, 0), |(_, s)| (s.count, s.held_requests))
    }
}

#[tokio::test]
async fn only_deactivations_of_active_users_and_deletes_of_existing_ones_count() {
    let f = fixture();
    let inactive = f.create("ian", false).await;
    let (ann, bob, cy, dee) = (
        f.create("ann", true).await,
        f.create("bob", true).await,
        f.create("cy", true).await,
        f.create("dee", true).await,
    );
    assert_eq!(
        f.counted().await,
        (0, 0),
        "an inactive create is no deprovisioning"
    );
    assert_eq!(f.put(&ann, "ann", None).await, 200);
    assert_eq!(f.put(&ann, "ann", Some(true)).await, 200);
    assert_eq!(f.put(&inactive, "ian", Some(false)).await, 200);
    assert_eq!(
        f.counted().await,
        (0, 0),
        "active left alone, or already false"
    );
    assert_eq!(f.put(&bob, "bob", Some(false)).await, 200);
    assert_eq!(f.put(&bob, "bob", Some(false)).await, 200);
    assert_eq!(f.counted().await, (1, 0), "bob once");
    assert_eq!(f.delete("no-such-user").await, 404);
    assert_eq!(f.counted().await, (1, 0), "an unknown id is not counted");
    assert_eq!(f.delete(&cy).await, 204);
    assert_eq!(f.counted().await, (2, 0));

    f.backend.clear_calls();
    let (logs, _guard) = capture_logs();
    assert_eq!(f.put(&dee, "dee", Some(false)).await, 503);
    assert_eq!(f.delete(&dee).await, 503);
    assert_eq!(f.delete(&ann).await, 503);
    assert_eq!(f.counted().await, (2, 3));
    assert!(f.backend.writes().is_empty(), "{:?}", f.backend.writes());
    assert!(
        f.backend.calls().iter().all(|(op, _)| *op == Op::Get),
        "only reads: {:?}",
        f.backend.calls()
    );
    let text = String::from_utf8_lossy(&logs.lock().unwrap_or_else(|p| p.into_inner())).to_string();
    assert_eq!(text.matches("DEPROVISIONING BRAKE").count(), 1, "{text}");
    assert!(text.contains("tenant \"globex\" is held"), "{text}");
}

#[tokio::test]
async fn a_held_deprovisioning_is_a_retryable_error_naming_the_command() {
    let f = fixture();
    let ids = [
        f.create("ann", true).await,
        f.create("bob", true).await,
        f.create("cy", true).await,
    ];
    for id in &ids[..2] {
        assert_eq!(f.delete(id).await, 204);
    }
    let held = f.directory.delete(&f.tenant, &ids[2]).await.unwrap_err();
    assert_eq!(
        (held.status, held.scim_type, held.retry_after),
        (503, None, Some(30))
    );
    assert!(
        held.detail
            .contains("scimgate brake release --config FILE --tenant globex"),
        "{}",
        held.detail
    );
    assert!(f.backend.user(&f.tenant, &ids[2]).is_some(), "not deleted");
}
