//! Versioned schema migrations. `scimgate_migrations` records every version applied; a
//! migration runs in one transaction with the version it records, under a transaction-scoped
//! advisory lock, so gateways starting together apply each migration exactly once and the
//! others find it done. A database at a version newer than this build knows is refused.
//!
//! Text columns that are keys are `COLLATE "C"`: ids sort bytewise (as SQLite sorts them) and
//! `lower()` folds ASCII letters only (as SQLite's `NOCASE` does), whatever the database's locale.

use super::super::{OpenError, StoreError};
use super::errors::classify;
use tokio_postgres::Client;

/// One step of the schema.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "users, pending creates, write probe",
        sql: r#"
CREATE TABLE users (
    tenant        TEXT COLLATE "C" NOT NULL,
    id            TEXT COLLATE "C" NOT NULL,
    external_id   TEXT COLLATE "C",
    shadow        TEXT NOT NULL,
    managed       BOOLEAN NOT NULL DEFAULT FALSE,
    created       TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX users_external_id ON users (tenant, external_id);
CREATE INDEX users_managed_folded ON users (tenant, lower(id)) WHERE managed;
CREATE TABLE pending_creates (
    tenant    TEXT COLLATE "C" NOT NULL,
    user_name TEXT COLLATE "C" NOT NULL,
    shadow    TEXT NOT NULL,
    created   TEXT NOT NULL,
    PRIMARY KEY (tenant, user_name)
);
CREATE TABLE write_probe (id INTEGER PRIMARY KEY, at TEXT NOT NULL);
"#,
    },
    Migration {
        version: 2,
        name: "externalId lookups in id order from the index",
        sql: r#"
CREATE INDEX users_external_id_id ON users (tenant, external_id, id);
DROP INDEX users_external_id;
"#,
    },
    Migration {
        version: 3,
        name: "work email addresses indexed by trigger",
        sql: r#"
CREATE TABLE work_emails (
    tenant TEXT COLLATE "C" NOT NULL,
    email  TEXT COLLATE "C" NOT NULL,
    id     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant, email, id)
);
CREATE INDEX work_emails_user ON work_emails (tenant, id);
CREATE FUNCTION scimgate_work_emails(shadow TEXT) RETURNS SETOF TEXT
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    doc jsonb;
BEGIN
    BEGIN
        doc := shadow::jsonb;
    EXCEPTION WHEN invalid_text_representation THEN
        RETURN;
    END;
    RETURN QUERY SELECT DISTINCT lower(replace(e ->> 'value', chr(8490), 'k') COLLATE "C")
        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(doc -> 'emails') = 'array'
            THEN doc -> 'emails' ELSE '[]'::jsonb END) AS e
        WHERE lower(replace(e ->> 'type', chr(8490), 'k') COLLATE "C") = 'work'
            AND jsonb_typeof(e -> 'value') = 'string';
END
$$;
CREATE FUNCTION scimgate_users_work_emails() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM work_emails WHERE tenant = OLD.tenant AND id = OLD.id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO work_emails (tenant, email, id)
            SELECT NEW.tenant, w, NEW.id FROM scimgate_work_emails(NEW.shadow) AS w;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER users_work_emails AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION scimgate_users_work_emails();
INSERT INTO work_emails (tenant, email, id)
    SELECT u.tenant, w, u.id FROM users AS u, scimgate_work_emails(u.shadow) AS w;
"#,
    },
    Migration {
        version: 4,
        name: "work email trigger without a subtransaction or churn",
        // The trigger of version 3 parsed the resource inside an exception block (a
        // subtransaction per write) and deleted and re-inserted the user's addresses on every
        // write: most of the cost of a PATCH in the database. This one parses without a
        // subtransaction (the gateway writes only JSON; the tolerant function stays for the
        // back-fill of version 3) and touches only the addresses that changed.
        sql: r#"
CREATE FUNCTION scimgate_work_email_set(shadow TEXT) RETURNS TEXT[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(DISTINCT lower(replace(e ->> 'value', chr(8490), 'k') COLLATE "C")),
                    '{}')
        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(shadow::jsonb -> 'emails') = 'array'
            THEN shadow::jsonb -> 'emails' ELSE '[]'::jsonb END) AS e
        WHERE lower(replace(e ->> 'type', chr(8490), 'k') COLLATE "C") = 'work'
            AND jsonb_typeof(e -> 'value') = 'string'
$$;
CREATE OR REPLACE FUNCTION scimgate_users_work_emails() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    emails TEXT[];
BEGIN
    IF TG_OP <> 'DELETE' THEN
        emails := scimgate_work_email_set(NEW.shadow);
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.tenant = NEW.tenant AND OLD.id = NEW.id THEN
        DELETE FROM work_emails
            WHERE tenant = OLD.tenant AND id = OLD.id AND email <> ALL (emails);
    ELSIF TG_OP <> 'INSERT' THEN
        DELETE FROM work_emails WHERE tenant = OLD.tenant AND id = OLD.id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO work_emails (tenant, email, id)
            SELECT NEW.tenant, w, NEW.id FROM unnest(emails) AS w
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
"#,
    },
    Migration {
        version: 5,
        name: "groups, pending group creates, managed memberships",
        // Groups mirror users. A membership's primary key answers a group's members in id
        // order; `memberships_user` a user's memberships (for its delete); and
        // `memberships_folded` whether a membership is managed with both ids ignoring ASCII case.
        sql: r#"
CREATE TABLE groups (
    tenant        TEXT COLLATE "C" NOT NULL,
    id            TEXT COLLATE "C" NOT NULL,
    external_id   TEXT COLLATE "C",
    shadow        TEXT NOT NULL,
    managed       BOOLEAN NOT NULL DEFAULT FALSE,
    created       TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX groups_external_id_id ON groups (tenant, external_id, id);
CREATE TABLE pending_group_creates (
    tenant       TEXT COLLATE "C" NOT NULL,
    display_name TEXT COLLATE "C" NOT NULL,
    shadow       TEXT NOT NULL,
    created      TEXT NOT NULL,
    PRIMARY KEY (tenant, display_name)
);
CREATE TABLE memberships (
    tenant   TEXT COLLATE "C" NOT NULL,
    group_id TEXT COLLATE "C" NOT NULL,
    user_id  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant, group_id, user_id)
);
CREATE INDEX memberships_user ON memberships (tenant, user_id);
CREATE INDEX memberships_folded ON memberships (tenant, lower(group_id), lower(user_id));
"#,
    },
    Migration {
        version: 6,
        name: "store tenants and SCIM API keys",
        // A key is kept as the SHA-256 of its secret, never the secret. The unique index on
        // `sha256` answers the lookup of every request's key; `api_keys_tenant` a tenant's keys
        // in id order. Times are RFC 3339 text in UTC, compared bytewise.
        sql: r#"
CREATE TABLE tenants (
    name       TEXT COLLATE "C" PRIMARY KEY,
    enabled    BOOLEAN NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE api_keys (
    id           TEXT COLLATE "C" PRIMARY KEY,
    sha256       TEXT COLLATE "C" NOT NULL UNIQUE,
    tenant       TEXT COLLATE "C" NOT NULL REFERENCES tenants (name),
    label        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    last_used_at TEXT COLLATE "C",
    revoked_at   TEXT COLLATE "C"
);
CREATE INDEX api_keys_tenant ON api_keys (tenant, id);
"#,
    },
    Migration {
        version: 7,
        name: "brakes on mass deprovisioning",
        // One row per tenant (see `store::brake`), taken `FOR UPDATE` by every change so the
        // gateways of a fleet count one after the other. Times are Unix seconds.
        sql: r#"
CREATE TABLE brakes (
    tenant        TEXT COLLATE "C" PRIMARY KEY,
    window_start  BIGINT NOT NULL,
    count         BIGINT NOT NULL,
    allowance     BIGINT NOT NULL,
    held_since    BIGINT,
    held_requests BIGINT NOT NULL,
    trips         BIGINT NOT NULL,
    released_at   BIGINT
);
"#,
    },
    Migration {
        version: 8,
        name: "work email addresses computed by the gateway, the trigger only when they change",
        // Parsing the resource in the trigger was most of the database's cost of a write. The
        // gateway now writes each user's work addresses (`work_email_set`, as
        // `scimgate_work_email_set` computes them) with the SHA-256 of the resource they were
        // computed from (`work_email_of`); an update runs the trigger only when the addresses
        // change. A row written without them, or with a stale hash (a gateway of an older build
        // during a rolling upgrade, or `store copy`), is parsed in the database as before, and
        // the next write of it runs the trigger again. No back-fill: old rows have no hash.
        sql: r#"
ALTER TABLE users ADD COLUMN work_email_set TEXT[], ADD COLUMN work_email_of BYTEA;
CREATE OR REPLACE FUNCTION scimgate_users_work_emails() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    emails TEXT[];
BEGIN
    IF TG_OP <> 'DELETE' THEN
        IF NEW.work_email_of = sha256(convert_to(NEW.shadow, 'UTF8')) THEN
            emails := NEW.work_email_set;
        ELSE
            emails := scimgate_work_email_set(NEW.shadow);
        END IF;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.tenant = NEW.tenant AND OLD.id = NEW.id THEN
        DELETE FROM work_emails
            WHERE tenant = OLD.tenant AND id = OLD.id AND email <> ALL (emails);
    ELSIF TG_OP <> 'INSERT' THEN
        DELETE FROM work_emails WHERE tenant = OLD.tenant AND id = OLD.id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO work_emails (tenant, email, id)
            SELECT NEW.tenant, w, NEW.id FROM unnest(emails) AS w
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER users_work_emails ON users;
CREATE TRIGGER users_work_emails AFTER INSERT OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION scimgate_users_work_emails();
CREATE TRIGGER users_work_emails_changed AFTER UPDATE ON users FOR EACH ROW
    WHEN (OLD.tenant <> NEW.tenant OR OLD.id <> NEW.id
          OR OLD.work_email_set IS DISTINCT FROM NEW.work_email_set
          OR OLD.work_email_of IS DISTINCT FROM sha256(convert_to(OLD.shadow, 'UTF8'))
          OR NEW.work_email_of IS DISTINCT FROM sha256(convert_to(NEW.shadow, 'UTF8')))
    EXECUTE FUNCTION scimgate_users_work_emails();
"#,
    },
    Migration {
        version: 9,
        name: "externalId indexes only for rows with one",
        // A statement is planned once per connection and its plan kept (a generic plan). Planned
        // while the tables are still empty, a read by id could search the externalId index by
        // tenant alone, as cheap as the primary key by the empty statistics, and keep doing so
        // as the tables grow. Partial, these indexes serve only lookups by externalId.
        sql: r#"
DROP INDEX users_external_id_id;
CREATE INDEX users_external_id_id ON users (tenant, external_id, id)
    WHERE external_id IS NOT NULL;
DROP INDEX groups_external_id_id;
CREATE INDEX groups_external_id_id ON groups (tenant, external_id, id)
    WHERE external_id IS NOT NULL;
"#,
    },
    Migration {
        version: 10,
        name: "notify every update and deletion of a user row",
        // Gateways cache the user records they show and drop an entry when its user's
        // notification arrives (src/store/postgres/listener.rs). Sent at commit, one per row.
        // Inserts need none: gateways cache only rows they found.
        sql: r#"
CREATE FUNCTION scimgate_user_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('scimgate_users', json_build_array(OLD.tenant, OLD.id)::text);
    RETURN NULL;
END $$;
CREATE TRIGGER users_changed AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION scimgate_user_changed();
"#,
    },
    Migration {
        version: 11,
        name: "work email addresses indexed in the users' own rows",
        // The `work_emails` table cost every create a trigger call, a row and two index entries.
        // A GIN index on `work_email_set` answers the same lookup with one entry per address
        // (entered at once: `fastupdate` would have every lookup read the entries not yet merged).
        // The set is trusted only with the hash of the resource it was computed from; a row
        // written without it (`store copy`, a hand edit) gets it from the resource, before it is
        // written (the rows written so before are rewritten once, for the trigger to fill
        // them). `work_emails` stays as a view, so a gateway of an older build, still running
        // during a rolling upgrade, finds every address (by a search of the tenant's users).
        sql: r#"
DROP TRIGGER users_work_emails ON users;
DROP TRIGGER users_work_emails_changed ON users;
DROP FUNCTION scimgate_users_work_emails();
DROP FUNCTION scimgate_work_emails(TEXT);
DROP TABLE work_emails;
CREATE FUNCTION scimgate_users_work_email_set() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.work_email_set := scimgate_work_email_set(NEW.shadow);
    NEW.work_email_of := sha256(convert_to(NEW.shadow, 'UTF8'));
    RETURN NEW;
END $$;
CREATE TRIGGER users_work_email_set BEFORE INSERT OR UPDATE ON users FOR EACH ROW
    WHEN (NEW.work_email_of IS DISTINCT FROM sha256(convert_to(NEW.shadow, 'UTF8')))
    EXECUTE FUNCTION scimgate_users_work_email_set();
UPDATE users SET shadow = shadow
    WHERE work_email_of IS DISTINCT FROM sha256(convert_to(shadow, 'UTF8'));
CREATE INDEX users_work_email_set ON users USING gin (work_email_set) WITH (fastupdate = off);
CREATE VIEW work_emails AS
    SELECT u.tenant, e.email COLLATE "C" AS email, u.id
    FROM users AS u CROSS JOIN LATERAL unnest(u.work_email_set) AS e(email);
"#,
    },
];

/// Advisory lock key taken by every migration run (a scimgate constant: "scimgate" in ASCII).
const MIGRATION_LOCK: i64 = 0x7363_696d_6761_7465;

/// How long a migration run waits for another gateway's run to finish.
const MIGRATION_LOCK_WAIT_MS: u64 = 60_000;

const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS scimgate_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";

/// The newest schema version this build knows.
pub fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The version found.
    pub from: i32,
    /// The version now.
    pub to: i32,
    /// The migrations applied, as `version: name`.
    pub applied: Vec<String>,
}

impl std::fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.applied.is_empty() {
            write!(f, "the schema is at version {}: nothing to do", self.to)
        } else {
            write!(
                f,
                "migrated the schema from version {} to {}: {}",
                self.from,
                self.to,
                self.applied.join("; ")
            )
        }
    }
}

/// Applies every migration the database lacks, one run at a time across gateways.
pub(super) async fn migrate(client: &mut Client) -> Result<MigrationReport, OpenError> {
    migrate_up_to(client, latest()).await
}

/// [`migrate`], but no further than version `target`: the database a build that knew no newer
/// version would have left, for tests of an upgrade.
#[doc(hidden)]
pub async fn migrate_up_to(client: &mut Client, target: i32) -> Result<MigrationReport, OpenError> {
    let tx = client.transaction().await.map_err(db)?;
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = {MIGRATION_LOCK_WAIT_MS}; SET LOCAL statement_timeout = 0; \
         SET LOCAL client_min_messages = warning"
    ))
    .await
    .map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    tx.batch_execute(VERSION_TABLE).await.map_err(db)?;
    let found = applied_version(&tx).await?;
    if found > latest() {
        return Err(OpenError::SchemaTooNew {
            found,
            known: latest(),
        });
    }
    let mut applied = Vec::new();
    let mut to = found;
    for m in MIGRATIONS
        .iter()
        .filter(|m| m.version > found && m.version <= target)
    {
        tx.batch_execute(m.sql).await.map_err(db)?;
        tx.execute(
            "INSERT INTO scimgate_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await
        .map_err(db)?;
        applied.push(format!("{}: {}", m.version, m.name));
        to = m.version;
    }
    tx.commit().await.map_err(db)?;
    Ok(MigrationReport {
        from: found,
        to,
        applied,
    })
}

/// Checks, without changing anything, that the database is at exactly this build's version.
pub(super) async fn check(client: &Client) -> Result<(), OpenError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('scimgate_migrations') IS NOT NULL", &[])
        .await
        .map_err(db)?
        .get(0);
    let found = if exists {
        applied_version(client).await?
    } else {
        0
    };
    match found.cmp(&latest()) {
        std::cmp::Ordering::Greater => Err(OpenError::SchemaTooNew {
            found,
            known: latest(),
        }),
        std::cmp::Ordering::Less => Err(OpenError::SchemaBehind {
            found,
            known: latest(),
        }),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// The newest version recorded (0 when none).
async fn applied_version(client: &impl tokio_postgres::GenericClient) -> Result<i32, OpenError> {
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM scimgate_migrations",
            &[],
        )
        .await
        .map_err(db)?;
    row.try_get(0)
        .map_err(|e| OpenError::Store(StoreError::Corrupt(format!("scimgate_migrations: {e}"))))
}

fn db(e: tokio_postgres::Error) -> OpenError {
    OpenError::Store(classify(&e))
}
