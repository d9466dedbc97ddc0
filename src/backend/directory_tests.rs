//! Unit tests of [`Directory`] over a [`FakeBackend`] and the real SQLite store in a temporary
//! file, no sockets: SCIM writes and every compensation the gateway makes when a later step of a
//! write fails. Store failures are injected with SQLite triggers that abort a chosen statement.

use super::directory::Directory;
use super::fake::{alt_api, FakeBackend, Op};
use crate::auth::Tenant;
use crate::scim::error::ScimError;
use crate::scim::normalize::normalize_user;
use crate::scim::resource::ScimUser;
use crate::service::{Replacement, UserDirectory};
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, UserRecord};
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const NOW: &str = "2026-12-04T10:00:00Z";
const LATER: &str = "2026-12-04T11:00:00Z";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// A directory over a fake backend and a store in a temporary directory.
struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: Arc<dyn Store>,
    backend: Arc<FakeBackend>,
    directory: Directory,
    tenant: Tenant,
}

fn fixture() -> Fixture {
    fixture_with(true)
}

/// With `reports_duplicates` false the backend accepts a taken login.
fn fixture_with(reports_duplicates: bool) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.sqlite");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).expect("store"));
    let backend = Arc::new(FakeBackend::new(alt_api(reports_duplicates)));
    let directory = Directory::new(backend.clone(), store.clone(), 100);
    Fixture {
        _dir: dir,
        path,
        store,
        backend,
        directory,
        tenant: Tenant {
            name: "globex".into(),
            backend_name: "globex-org".into(),
        },
    }
}

impl Fixture {
    /// Makes every `event` (INSERT, UPDATE, DELETE) on `table` fail until [`Fixture::heal`].
    fn break_store(&self, table: &str, event: &str) {
        let conn = rusqlite::Connection::open(&self.path).expect("open store");
        conn.execute_batch(&format!(
            "CREATE TRIGGER fail_{table}_{event} BEFORE {event} ON {table}
             BEGIN SELECT RAISE(ABORT, 'injected store failure'); END;"
        ))
        .expect("trigger");
    }

    /// Removes every injected store failure.
    fn heal(&self) {
        let conn = rusqlite::Connection::open(&self.path).expect("open store");
        let names: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("triggers");
        for name in names {
            conn.execute_batch(&format!("DROP TRIGGER {name}"))
                .expect("drop");
        }
    }

    async fn record(&self, id: &str) -> Option<UserRecord> {
        self.store
            .get(&self.tenant.name, id)
            .await
            .expect("store read")
    }

    async fn pending(&self, user_name: &str) -> Option<UserRecord> {
        self.store
            .pending_create(&self.tenant.name, user_name)
            .await
            .expect("store read")
    }

    async fn create(&self, body: Value) -> Result<ScimUser, ScimError> {
        self.directory
            .create(&self.tenant, resource(body), NOW)
            .await
    }

    async fn replace(&self, id: &str, body: Value) -> Result<ScimUser, ScimError> {
        self.write(id, resource(body), Replacement::Put).await
    }

    /// Reads user `id` and writes `resource` over it, as a PUT or PATCH does.
    async fn write(
        &self,
        id: &str,
        resource: Value,
        from: Replacement,
    ) -> Result<ScimUser, ScimError> {
        let (_held, current) = self.directory.lock_and_read(&self.tenant, id).await?;
        let current = current.ok_or_else(|| ScimError::not_found(id))?;
        self.directory
            .write(&self.tenant, current, resource, LATER, from)
            .await
    }

    async fn get(&self, id: &str) -> Option<ScimUser> {
        self.directory.get(&self.tenant, id).await.expect("get")
    }

    /// Creates alice (active) and forgets the calls that made her.
    async fn alice(&self) -> String {
        let id = self.create(alice()).await.expect("create alice").id;
        self.backend.clear_calls();
        id
    }
}

/// A normalised SCIM User from a request body.
fn resource(body: Value) -> Value {
    normalize_user(&body).expect("valid user")
}

fn alice() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "userName": "alice@contoso.com",
        "externalId": "ext-alice",
        "name": {"givenName": "Alice", "familyName": "Smith"},
        ENTERPRISE: {"department": "Sales"},
    })
}

fn inactive_alice() -> Value {
    let mut body = alice();
    body["active"] = json!(false);
    body
}

/// Alice with another family name, nickname and department: a PUT's body.
fn alice_changed() -> Value {
    let mut body = alice();
    body["name"]["familyName"] = json!("Smyth");
    body["nickName"] = json!("al");
    body[ENTERPRISE]["department"] = json!("Ops");
    body
}

fn backend_failure(what: &str) -> ScimError {
    ScimError::bad_gateway(format!("{what}: the user service answered 500"))
}

/// What the gateway logs while the returned guard lives (the test runs on one thread).
pub(super) fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || LogSink(sink.clone()))
        .finish();
    (buf, tracing::subscriber::set_default(subscriber))
}

struct LogSink(Arc<Mutex<Vec<u8>>>);

impl Write for LogSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logged(buf: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

// ---- writes that succeed --------------------------------------------------------------------

#[tokio::test]
async fn create_replace_patch_delete_reach_backend_and_store() {
    let f = fixture();
    let created = f.create(alice()).await.expect("create");
    let id = created.id.clone();
    let native = f.backend.user(&f.tenant, &id).expect("in the backend");
    assert_eq!(
        (&native["login"], &native["family"]),
        (&json!("alice@contoso.com"), &json!("Smith"))
    );
    let record = f.record(&id).await.expect("recorded");
    assert!(record.managed);
    assert_eq!(record.shadow["externalId"], "ext-alice");
    assert_eq!(record.created, NOW);
    assert!(
        f.pending("alice@contoso.com").await.is_none(),
        "the note is cleared"
    );
    assert!(f
        .directory
        .is_managed(&f.tenant, &id)
        .await
        .expect("managed"));
    assert_eq!(f.get(&id).await.expect("read back"), created);

    let replaced = f.replace(&id, alice_changed()).await.expect("replace");
    assert_eq!(
        f.backend.user(&f.tenant, &id).expect("kept")["family"],
        "Smyth"
    );
    let record = f.record(&id).await.expect("recorded");
    assert_eq!(record.shadow[ENTERPRISE]["department"], "Ops");
    assert_eq!(
        (record.created.as_str(), record.last_modified.as_str()),
        (NOW, LATER)
    );
    assert_eq!(f.get(&id).await.expect("read back"), replaced);

    let mut patched = replaced.resource.clone();
    patched["nickName"] = json!("ally");
    let answer = f
        .write(&id, patched, Replacement::Patch)
        .await
        .expect("patch");
    assert_eq!(answer.resource["nickName"], "ally");
    assert_eq!(
        f.backend.user(&f.tenant, &id).expect("kept")["nick"],
        "ally"
    );

    f.directory.delete(&f.tenant, &id).await.expect("delete");
    assert!(f.backend.user(&f.tenant, &id).is_none());
    assert!(f.record(&id).await.is_none());
    assert!(!f
        .directory
        .is_managed(&f.tenant, &id)
        .await
        .expect("managed"));
    assert!(f.get(&id).await.is_none());
    let again = f.directory.delete(&f.tenant, &id).await;
    assert_eq!(again.map_err(|e| e.status), Err(404));
}

#[tokio::test]
async fn an_inactive_create_deactivates_after_creating() {
    let f = fixture();
    let created = f.create(inactive_alice()).await.expect("create");
    assert_eq!(created.resource["active"], false);
    let id = created.id;
    assert_eq!(
        f.backend.writes(),
        [
            (Op::Create, "alice@contoso.com".to_string()),
            (Op::SetActive, format!("{id} false"))
        ]
    );
    assert_eq!(
        f.backend.user(&f.tenant, &id).expect("kept")["active"],
        false
    );
}

#[tokio::test]
async fn a_change_of_active_alone_makes_no_full_update() {
    let f = fixture();
    let id = f.alice().await;
    let user = f.replace(&id, inactive_alice()).await.expect("replace");
    assert_eq!(user.resource["active"], false);
    assert_eq!(f.backend.writes(), [(Op::SetActive, format!("{id} false"))]);
    // A PUT that leaves `active` out does not re-activate the user.
    f.backend.clear_calls();
    let user = f.replace(&id, alice_changed()).await.expect("replace");
    assert_eq!(user.resource["active"], false);
    assert_eq!(f.backend.writes(), [(Op::Update, id.clone())]);
    assert_eq!(
        f.backend.user(&f.tenant, &id).expect("kept")["active"],
        false
    );
}

// ---- create: compensations ------------------------------------------------------------------

#[tokio::test]
async fn inactive_create_whose_deactivate_fails_is_deleted_again() {
    let f = fixture();
    f.backend
        .fail(Op::SetActive, 0, backend_failure("deactivate user"));
    let e = f.create(inactive_alice()).await.expect_err("refused");
    assert_eq!(e.status, 502);
    assert!(
        e.detail
            .starts_with("deactivate user: the user service answered 500; "),
        "{}",
        e.detail
    );
    assert!(
        e.detail.contains("was deleted again, nothing was applied"),
        "{}",
        e.detail
    );
    assert_eq!(
        f.backend.writes(),
        [
            (Op::Create, "alice@contoso.com".to_string()),
            (Op::SetActive, "acc_1 false".to_string()),
            (Op::DeleteToUndo, "acc_1".to_string())
        ]
    );
    assert!(f.backend.users(&f.tenant).is_empty());
    assert!(f.record("acc_1").await.is_none());
    assert!(
        f.pending("alice@contoso.com").await.is_none(),
        "the note is cleared"
    );
    // The identity provider's retry succeeds.
    let created = f.create(inactive_alice()).await.expect("retry");
    assert_eq!(f.backend.users(&f.tenant).len(), 1);
    assert_eq!(
        f.record(&created.id).await.expect("recorded").shadow["active"],
        false
    );
}

#[tokio::test]
async fn inactive_create_whose_undo_fails_says_where_the_account_is() {
    let f = fixture();
    let (logs, _guard) = capture_logs();
    f.backend
        .fail(Op::SetActive, 0, backend_failure("deactivate user"));
    f.backend
        .fail(Op::DeleteToUndo, 0, backend_failure("delete user"));
    let e = f.create(inactive_alice()).await.expect_err("refused");
    assert_eq!(e.status, 502);
    assert!(
        e.detail.contains("created in the user service as id acc_1 and could not be removed (delete user: the user service answered 500)"),
        "{}",
        e.detail
    );
    assert!(!e.detail.contains("nothing was applied"), "{}", e.detail);
    assert!(
        logged(&logs).contains("create half-applied"),
        "{}",
        logged(&logs)
    );
    assert_eq!(f.backend.users(&f.tenant).len(), 1, "the account remains");
    // The note is kept, so a read of the account left behind records what SCIM wrote.
    assert!(f.pending("alice@contoso.com").await.is_some());
    let read = f.get("acc_1").await.expect("left behind");
    assert_eq!(read.resource["externalId"], "ext-alice");
    assert!(f.record("acc_1").await.expect("recorded on read").managed);
}

#[tokio::test]
async fn create_whose_record_fails_is_deleted_again() {
    let f = fixture();
    f.break_store("users", "INSERT");
    let e = f.create(alice()).await.expect_err("refused");
    assert_eq!(e.status, 503);
    assert!(
        e.detail.contains("the gateway's store failed"),
        "{}",
        e.detail
    );
    assert!(
        e.detail
            .contains("(id acc_1) was deleted again, nothing was applied"),
        "{}",
        e.detail
    );
    assert_eq!(
        f.backend.writes(),
        [
            (Op::Create, "alice@contoso.com".to_string()),
            (Op::DeleteToUndo, "acc_1".to_string())
        ]
    );
    assert!(f.backend.users(&f.tenant).is_empty());
    assert!(f.pending("alice@contoso.com").await.is_none());
    // Once the store works again, the retry makes a complete user.
    f.heal();
    let created = f.create(alice()).await.expect("retry");
    assert_eq!(
        f.record(&created.id).await.expect("recorded").shadow[ENTERPRISE]["department"],
        "Sales"
    );
}

#[tokio::test]
async fn create_the_backend_refuses_clears_the_pending_note() {
    let f = fixture();
    f.backend
        .fail(Op::Create, 0, backend_failure("create user"));
    let e = f.create(alice()).await.expect_err("refused");
    assert_eq!(
        (e.status, e.detail.as_str()),
        (502, "create user: the user service answered 500")
    );
    assert_eq!(
        f.backend.writes(),
        [(Op::Create, "alice@contoso.com".to_string())],
        "nothing to undo"
    );
    assert!(f.pending("alice@contoso.com").await.is_none());
    assert!(f.store.all(&f.tenant.name).await.expect("read").is_empty());
}

#[tokio::test]
async fn create_whose_note_cannot_be_written_never_reaches_the_backend() {
    let f = fixture();
    f.break_store("pending_creates", "INSERT");
    let e = f.create(alice()).await.expect_err("refused");
    assert_eq!(e.status, 503);
    assert!(f.backend.writes().is_empty(), "{:?}", f.backend.writes());
}

// ---- create: the name must be free ----------------------------------------------------------

#[tokio::test]
async fn a_taken_user_name_is_refused_when_the_backend_does_not_report_duplicates() {
    let f = fixture_with(false);
    f.create(alice()).await.expect("create");
    let mut shouting = alice();
    shouting["userName"] = json!("ALICE@contoso.com");
    let e = f.create(shouting).await.expect_err("taken");
    assert_eq!(
        (e.status, e.scim_type.map(|t| t.as_str())),
        (409, Some("uniqueness"))
    );
    assert_eq!(f.backend.users(&f.tenant).len(), 1);
    assert!(f.pending("alice@contoso.com").await.is_none());
    // A name the app itself holds counts too.
    f.backend
        .insert(&f.tenant, json!({"login": "bob@contoso.com"}));
    let mut bob = alice();
    bob["userName"] = json!("bob@contoso.com");
    assert_eq!(f.create(bob).await.map_err(|e| e.status).err(), Some(409));
    assert_eq!(f.backend.users(&f.tenant).len(), 2);
}

#[tokio::test]
async fn a_backend_that_reports_duplicates_is_not_searched_first() {
    let f = fixture();
    f.alice().await;
    let e = f.create(alice()).await.expect_err("taken");
    assert_eq!(e.status, 409);
    assert!(
        !f.backend.calls().iter().any(|(op, _)| *op == Op::List),
        "{:?}",
        f.backend.calls()
    );
    assert!(f.pending("alice@contoso.com").await.is_none());
    assert_eq!(f.backend.users(&f.tenant).len(), 1);
}

// ---- replace: compensations -----------------------------------------------------------------

#[tokio::test]
async fn replace_whose_record_fails_puts_the_backend_back() {
    let f = fixture();
    let id = f.alice().await;
    let native_before = f.backend.user(&f.tenant, &id).expect("alice");
    let record_before = f.record(&id).await.expect("recorded");
    f.break_store("users", "UPDATE");
    let e = f.replace(&id, alice_changed()).await.expect_err("refused");
    assert_eq!(e.status, 503);
    assert!(
        e.detail
            .contains("the user service was put back as it was, nothing was applied"),
        "{}",
        e.detail
    );
    assert_eq!(
        f.backend.writes(),
        [(Op::Update, id.clone()), (Op::Update, id.clone())]
    );
    assert_eq!(
        f.backend.user(&f.tenant, &id).expect("alice"),
        native_before
    );
    assert_eq!(f.record(&id).await.expect("kept"), record_before);
    f.heal();
    let read = f.get(&id).await.expect("alice");
    assert_eq!(read.resource["name"]["familyName"], "Smith");
    assert_eq!(read.resource[ENTERPRISE]["department"], "Sales");
}

#[tokio::test]
async fn replace_whose_put_back_fails_says_so() {
    let f = fixture();
    let (logs, _guard) = capture_logs();
    let id = f.alice().await;
    f.break_store("users", "UPDATE");
    f.backend
        .fail(Op::Update, 1, backend_failure("update user"));
    let e = f.replace(&id, alice_changed()).await.expect_err("refused");
    assert_eq!(e.status, 503);
    assert!(
        e.detail.contains("the user service was updated but could not be put back (update user: the user service answered 500): retry the request"),
        "{}",
        e.detail
    );
    assert!(
        logged(&logs).contains("update half-applied"),
        "{}",
        logged(&logs)
    );
    assert_eq!(
        f.backend.user(&f.tenant, &id).expect("alice")["family"],
        "Smyth"
    );
    assert_eq!(
        f.record(&id).await.expect("kept").shadow["name"]["familyName"],
        "Smith"
    );
}

#[tokio::test]
async fn unwritable_store_refuses_replace_and_delete_before_the_backend() {
    let f = fixture();
    let id = f.alice().await;
    f.break_store("write_probe", "INSERT");
    f.break_store("write_probe", "UPDATE");
    let put = f.replace(&id, alice_changed()).await.expect_err("refused");
    let delete = f
        .directory
        .delete(&f.tenant, &id)
        .await
        .expect_err("refused");
    assert_eq!((put.status, delete.status), (503, 503));
    assert!(f.backend.writes().is_empty(), "{:?}", f.backend.writes());
    assert_eq!(
        f.backend.user(&f.tenant, &id).expect("alice")["family"],
        "Smith"
    );
}

#[tokio::test]
async fn patch_whose_deactivate_fails_keeps_the_other_changes_and_says_so() {
    let f = fixture();
    let id = f.alice().await;
    f.backend
        .fail(Op::SetActive, 0, backend_failure("deactivate user"));
    let mut patched = f.get(&id).await.expect("alice").resource;
    patched["name"]["familyName"] = json!("Smyth");
    patched["active"] = json!(false);
    let e = f
        .write(&id, patched.clone(), Replacement::Patch)
        .await
        .expect_err("refused");
    assert_eq!(e.status, 502);
    assert!(
        e.detail
            .ends_with("; the other attributes were updated, `active` was not"),
        "{}",
        e.detail
    );
    let native = f.backend.user(&f.tenant, &id).expect("alice");
    assert_eq!(
        (&native["family"], &native["active"]),
        (&json!("Smyth"), &json!(true))
    );
    let record = f.record(&id).await.expect("recorded");
    assert_eq!(record.shadow["name"]["familyName"], "Smyth");
    assert_eq!(record.shadow["active"], true, "`active` kept as it was");
    assert_eq!(f.get(&id).await.expect("alice").resource["active"], true);
    // The same PATCH again finishes the job.
    let user = f
        .write(&id, patched, Replacement::Patch)
        .await
        .expect("patch");
    assert_eq!(user.resource["active"], false);
    assert_eq!(
        f.backend.user(&f.tenant, &id).expect("alice")["active"],
        false
    );
}

// ---- reads after writes ---------------------------------------------------------------------

#[tokio::test]
async fn the_answer_after_deactivation_is_the_backend_read_after_it() {
    let f = fixture();
    let id = f.alice().await;
    // Deactivating also clears the nickname in this backend.
    f.backend.on_set_active(json!({"nick": null}));
    let mut body = alice_changed();
    body["active"] = json!(false);
    let user = f.replace(&id, body).await.expect("replace");
    assert_eq!(user.resource.get("nickName"), None, "{}", user.resource);
    assert_eq!(user.resource["active"], false);
    assert_eq!(
        f.get(&id).await.expect("alice"),
        user,
        "the answer equals the next read"
    );
    let (op, _) = f.backend.calls().last().cloned().expect("calls");
    assert_eq!(op, Op::Get, "read back after deactivating");
}

#[tokio::test]
async fn a_failed_read_after_deactivation_answers_the_update() {
    let f = fixture();
    let id = f.alice().await;
    // The write's own read passes; the read after deactivating fails.
    f.backend.fail(Op::Get, 1, backend_failure("get user"));
    let mut body = alice_changed();
    body["active"] = json!(false);
    let user = f.replace(&id, body).await.expect("every write succeeded");
    assert_eq!(user.resource["active"], false);
    assert_eq!(user.resource["nickName"], "al");
    assert_eq!(
        f.backend.user(&f.tenant, &id).expect("alice")["active"],
        false
    );
    assert_eq!(
        f.record(&id).await.expect("recorded").shadow["active"],
        false
    );
}

#[tokio::test]
async fn a_create_the_gateway_never_recorded_is_recorded_on_read() {
    let f = fixture();
    // The gateway noted the create and the backend made the user; the record was never written.
    let noted = UserRecord {
        shadow: resource(alice()),
        managed: true,
        created: NOW.into(),
        last_modified: NOW.into(),
    };
    f.store
        .put_pending_create(&f.tenant.name, "Alice@Contoso.com", &noted)
        .await
        .expect("note");
    let id = f.backend.insert(
        &f.tenant,
        json!({"login": "alice@contoso.com", "given": "Alice", "family": "Smith"}),
    );
    let read = f.get(&id).await.expect("alice");
    assert_eq!(read.resource["externalId"], "ext-alice");
    assert_eq!(read.resource[ENTERPRISE]["department"], "Sales");
    assert_eq!(read.created, NOW);
    assert_eq!(f.record(&id).await, Some(noted));
    assert!(f.pending("alice@contoso.com").await.is_none());
    assert!(f
        .directory
        .is_managed(&f.tenant, &id)
        .await
        .expect("managed"));
    // A user the app made with no note stays unmanaged.
    let bob = f
        .backend
        .insert(&f.tenant, json!({"login": "bob@contoso.com"}));
    assert!(f
        .get(&bob)
        .await
        .expect("bob")
        .resource
        .get("externalId")
        .is_none());
    assert!(f.record(&bob).await.is_none());
}

// ---- delete -----------------------------------------------------------------------------------

#[tokio::test]
async fn delete_whose_store_drop_fails_still_succeeds() {
    let f = fixture();
    let (logs, _guard) = capture_logs();
    let id = f.alice().await;
    f.break_store("users", "DELETE");
    f.directory.delete(&f.tenant, &id).await.expect("deleted");
    assert!(f.backend.user(&f.tenant, &id).is_none());
    assert!(
        f.record(&id).await.is_some(),
        "the record remains, naming nobody"
    );
    assert!(f.get(&id).await.is_none());
    assert!(
        logged(&logs).contains("its store record remains"),
        "{}",
        logged(&logs)
    );
}

// ---- filters the gateway evaluates: bounded scans -------------------------------------------

impl Fixture {
    /// Adds `n` users straight to the backend, `first` given name `Ann` and the rest `Bob`.
    fn populate(&self, n: usize, first: usize) {
        for i in 0..n {
            let given = if i < first { "Ann" } else { "Bob" };
            self.backend.insert(
                &self.tenant,
                json!({"login": format!("u{i:04}@contoso.com"), "given": given, "family": "X"}),
            );
        }
        self.backend.clear_calls();
    }

    async fn search(
        &self,
        filter: &str,
        start: usize,
        count: usize,
    ) -> Result<(usize, Vec<String>), ScimError> {
        let filter = crate::scim::filter::parse(filter).expect("filter");
        let page = self
            .directory
            .search(&self.tenant, Some(&filter), start, count)
            .await?;
        Ok((
            page.total,
            page.users
                .iter()
                .map(|u| {
                    u.resource["userName"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect(),
        ))
    }

    fn list_calls(&self) -> usize {
        self.backend
            .calls()
            .iter()
            .filter(|(op, _)| *op == Op::List)
            .count()
    }
}

#[tokio::test]
async fn a_scan_past_max_scan_is_refused_from_the_first_pages_total() {
    let f = fixture();
    f.populate(250, 0);
    let e = f
        .search("name.givenName eq \"Ann\"", 0, 10)
        .await
        .expect_err("refused");
    assert_eq!(
        (e.status, e.scim_type),
        (400, Some(crate::scim::error::ScimType::InvalidFilter))
    );
    assert!(
        e.detail.contains("250 users") && e.detail.contains("max_scan (100)"),
        "{}",
        e.detail
    );
    assert_eq!(
        f.list_calls(),
        1,
        "one page read, its total refused at once"
    );
}

#[tokio::test]
async fn without_a_total_a_scan_stops_at_the_page_that_passes_max_scan() {
    let f = fixture();
    f.populate(1000, 0);
    f.backend.hide_total();
    let e = f
        .search("name.givenName eq \"Ann\"", 0, 10)
        .await
        .expect_err("refused");
    assert_eq!(e.status, 400);
    // Pages of 50: the third page takes the count to 150 > 100, and no page is read after it.
    assert_eq!(f.list_calls(), 3, "{:?}", f.backend.calls());
}

#[tokio::test]
async fn a_scan_within_max_scan_reads_page_by_page_and_pages_the_matches() {
    for hide in [false, true] {
        let f = fixture();
        f.populate(100, 30);
        if hide {
            f.backend.hide_total();
        }
        let (_, every) = f
            .search("name.givenName eq \"Ann\"", 0, 100)
            .await
            .expect("answered");
        f.backend.clear_calls();
        let (total, users) = f
            .search("name.givenName eq \"Ann\"", 10, 5)
            .await
            .expect("answered");
        assert_eq!(total, 30);
        assert_eq!(users, every[10..15], "the matches in the backend's order");
        // Two full pages of 50; without a total, a third call finds the end.
        assert_eq!(
            f.list_calls(),
            if hide { 3 } else { 2 },
            "{:?}",
            f.backend.calls()
        );
    }
}

#[tokio::test]
async fn a_user_two_anchors_find_is_counted_once() {
    let f = fixture();
    f.populate(3, 3);
    let (total, users) = f
        .search(
            "userName eq \"u0001@contoso.com\" or userName eq \"U0001@contoso.com\"",
            0,
            10,
        )
        .await
        .expect("answered");
    assert_eq!((total, users.len()), (1, 1));
}

impl Fixture {
    /// Creates `n` users through the directory, the first `titled` with title `Chef` (an
    /// attribute only the store holds here) and the rest `Cook`; forgets the calls.
    async fn create_titled(&self, n: usize, titled: usize) {
        for i in 0..n {
            let title = if i < titled { "Chef" } else { "Cook" };
            let body = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": format!("t{i:03}@contoso.com"),
                "title": title,
            });
            self.create(body).await.expect("create");
        }
        self.backend.clear_calls();
    }
}

#[tokio::test]
async fn a_store_only_filter_past_max_scan_is_refused_from_the_store_count() {
    let f = fixture();
    // One match among 101 records: examining them would pass max_scan (100).
    f.create_titled(101, 1).await;
    let e = f
        .search("title eq \"Chef\"", 0, 10)
        .await
        .expect_err("refused");
    assert_eq!(
        (e.status, e.scim_type),
        (400, Some(crate::scim::error::ScimType::InvalidFilter))
    );
    assert!(e.detail.contains("101 users"), "{}", e.detail);
    assert!(f.backend.calls().is_empty(), "{:?}", f.backend.calls());
}

#[tokio::test]
async fn a_store_only_filter_walks_the_store_page_by_page_and_fetches_matches_only() {
    let f = fixture();
    // 70 records are two pages of 50; the matches are spread over both.
    f.create_titled(70, 0).await;
    let ids: Vec<String> = f
        .store
        .all(&f.tenant.name)
        .await
        .expect("records")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    for id in ids.iter().step_by(7) {
        let mut rec = f.record(id).await.expect("record");
        rec.shadow["title"] = json!("Chef");
        f.store.put(&f.tenant.name, id, &rec).await.expect("put");
    }
    f.backend.clear_calls();
    let (total, users) = f
        .search("title eq \"Chef\"", 0, 100)
        .await
        .expect("answered");
    assert_eq!((total, users.len()), (10, 10));
    let gets = f
        .backend
        .calls()
        .iter()
        .filter(|(op, _)| *op == Op::Get)
        .count();
    assert_eq!(
        gets,
        10,
        "only the matches are fetched: {:?}",
        f.backend.calls()
    );
    assert_eq!(f.list_calls(), 0);
}
