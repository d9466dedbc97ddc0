//! Validation of `[store]`: a SQLite `path` (the default), or a PostgreSQL `url` without a
//! password, with the variable that holds the password, the pool and the deadlines.

use super::validator::Validator;
use crate::config::file::StoreFile;
use crate::store::engine::StoreSettings;
use crate::store::postgres::{check_url, settings, PgSettings};
use serde_spanned::Spanned;
use std::path::Path;
use std::time::Duration;

impl Validator<'_> {
    pub(super) fn store(&mut self, s: &StoreFile, dir: &Path) -> Option<StoreSettings> {
        let Some(url) = &s.url else {
            self.postgres_keys_need_url(s);
            let path = s.path.as_ref().map_or("scimgate.sqlite", |p| p.get_ref());
            return Some(StoreSettings::Sqlite(dir.join(path)));
        };
        if let Some(path) = &s.path {
            self.at(
                path,
                "store.path and store.url exclude each other: path is the SQLite file of one \
                 gateway, url the PostgreSQL database of a fleet"
                    .into(),
            );
        }
        if let Err(e) = check_url(url.get_ref()) {
            self.at(url, e);
        }
        let password_env = match &s.password_env {
            Some(name) => self.env_var(name, "store.password_env".into()).map(Some),
            None => Some(None),
        };
        let pool_size = match &s.pool_size {
            Some(n) if *n.get_ref() == 0 => {
                self.at(n, "store.pool_size must be at least 1".into());
                None
            }
            Some(n) => Some(*n.get_ref()),
            None => Some(settings::DEFAULT_POOL_SIZE),
        };
        let migrate = match &s.migrate {
            Some(m) => m.get_ref().parse().map_err(|e| self.at(m, e)).ok(),
            None => Some(settings::Migrate::Auto),
        };
        let pool_wait = self.millis(&s.pool_wait_ms, "pool_wait_ms", settings::DEFAULT_POOL_WAIT);
        let connect_timeout = self.millis(
            &s.connect_timeout_ms,
            "connect_timeout_ms",
            settings::DEFAULT_CONNECT_TIMEOUT,
        );
        let statement_timeout = self.millis(
            &s.statement_timeout_ms,
            "statement_timeout_ms",
            settings::DEFAULT_STATEMENT_TIMEOUT,
        );
        let lock_wait = self.millis(&s.lock_wait_ms, "lock_wait_ms", settings::DEFAULT_LOCK_WAIT);
        Some(StoreSettings::Postgres(PgSettings {
            url: url.get_ref().clone(),
            password_env: password_env?,
            pool_size: pool_size?,
            pool_wait: pool_wait?,
            connect_timeout: connect_timeout?,
            statement_timeout: statement_timeout?,
            lock_wait: lock_wait?,
            synchronous_commit: s.synchronous_commit.as_ref().is_some_and(|b| *b.get_ref()),
            migrate: migrate?,
            record_cache: s.record_cache.as_ref().is_none_or(|b| *b.get_ref()),
        }))
    }

    /// A positive number of milliseconds, or `default`.
    fn millis(
        &mut self,
        value: &Option<Spanned<u64>>,
        key: &str,
        default: Duration,
    ) -> Option<Duration> {
        match value {
            Some(ms) if *ms.get_ref() == 0 => {
                self.at(ms, format!("store.{key} must be at least 1"));
                None
            }
            Some(ms) => Some(Duration::from_millis(*ms.get_ref())),
            None => Some(default),
        }
    }

    /// Each PostgreSQL setting given without `url` is an error at its position.
    fn postgres_keys_need_url(&mut self, s: &StoreFile) {
        let spans = [
            ("password_env", s.password_env.as_ref().map(Spanned::span)),
            ("pool_size", s.pool_size.as_ref().map(Spanned::span)),
            ("pool_wait_ms", s.pool_wait_ms.as_ref().map(Spanned::span)),
            (
                "connect_timeout_ms",
                s.connect_timeout_ms.as_ref().map(Spanned::span),
            ),
            (
                "statement_timeout_ms",
                s.statement_timeout_ms.as_ref().map(Spanned::span),
            ),
            ("lock_wait_ms", s.lock_wait_ms.as_ref().map(Spanned::span)),
            (
                "synchronous_commit",
                s.synchronous_commit.as_ref().map(Spanned::span),
            ),
            ("migrate", s.migrate.as_ref().map(Spanned::span)),
            ("record_cache", s.record_cache.as_ref().map(Spanned::span)),
        ];
        for (key, span) in spans {
            if let Some(span) = span {
                self.report(
                    span.start,
                    format!("store.{key} applies to a PostgreSQL store: set store.url too"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::from_str;
    use crate::store::engine::StoreSettings;
    use crate::store::postgres::{Migrate, PgSettings};
    use std::path::Path;
    use std::time::Duration;

    const DEMO: &str = include_str!("../../../conf/demo.toml");

    /// `conf/demo.toml` with `section` as its `[store]`.
    fn with_store(section: &str) -> String {
        let text = DEMO.replacen(
            "[store]\npath = \"scimgate.sqlite\"\n",
            &format!("[store]\n{section}\n"),
            1,
        );
        assert_ne!(text, DEMO, "conf/demo.toml changed its [store]");
        text
    }

    fn problems(text: &str) -> Vec<(usize, String)> {
        let err = from_str(text, Path::new("t.toml")).unwrap_err();
        err.problems
            .into_iter()
            .map(|p| (p.line, p.message))
            .collect()
    }

    fn line_of(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.starts_with(needle)).unwrap() + 1
    }

    #[test]
    fn the_default_store_is_sqlite_beside_the_config() {
        let c = from_str(DEMO, Path::new("conf/demo.toml")).unwrap();
        assert_eq!(
            c.store,
            StoreSettings::Sqlite(Path::new("conf").join("scimgate.sqlite"))
        );
        let c = from_str(
            &with_store("path = \"data/s.db\""),
            Path::new("/etc/gw.toml"),
        )
        .unwrap();
        assert_eq!(c.store, StoreSettings::Sqlite("/etc/data/s.db".into()));
    }

    #[test]
    fn a_url_selects_postgres_with_defaults_and_its_settings() {
        let text = with_store(
            "url = \"postgres://scim@db.internal:5432/scimgate\"\npassword_env = \"SCIMGATE_PG_PASSWORD\"",
        );
        let c = from_str(&text, Path::new("t.toml")).unwrap();
        let mut want = PgSettings::new("postgres://scim@db.internal:5432/scimgate");
        want.password_env = Some("SCIMGATE_PG_PASSWORD".into());
        assert_eq!(c.store, StoreSettings::Postgres(want));
        assert!(
            c.env_vars.iter().any(|v| v.name == "SCIMGATE_PG_PASSWORD"
                && v.setting == "store.password_env"
                && v.line == line_of(&text, "password_env")),
            "check warns when the password variable is unset: {:?}",
            c.env_vars
        );
        let text = with_store(
            "url = \"postgres://scim@db/scimgate\"\npool_size = 3\npool_wait_ms = 250\n\
             connect_timeout_ms = 1000\nstatement_timeout_ms = 2000\nlock_wait_ms = 3000\n\
             synchronous_commit = true\nmigrate = \"manual\"\nrecord_cache = false",
        );
        let StoreSettings::Postgres(pg) = from_str(&text, Path::new("t.toml")).unwrap().store
        else {
            panic!("not postgres");
        };
        assert_eq!(pg.pool_size, 3);
        assert_eq!(pg.pool_wait, Duration::from_millis(250));
        assert_eq!(pg.connect_timeout, Duration::from_secs(1));
        assert_eq!(pg.statement_timeout, Duration::from_secs(2));
        assert_eq!(pg.lock_wait, Duration::from_secs(3));
        assert!(pg.synchronous_commit);
        assert_eq!(pg.migrate, Migrate::Manual);
        assert!(!pg.record_cache);
    }

    #[test]
    fn store_mistakes_are_reported_where_they_are() {
        let text = with_store(
            "path = \"s.sqlite\"\nurl = \"postgres://scim:hunter2@db/scimgate\"\npool_size = 0\n\
             migrate = \"sometimes\"\nlock_wait_ms = 0",
        );
        let p = problems(&text);
        for (needle, want) in [
            ("path", "exclude each other"),
            ("url", "must not contain a password"),
            ("pool_size", "at least 1"),
            ("migrate", "\"auto\" or \"manual\""),
        ] {
            let line = line_of(&text, needle);
            assert!(
                p.iter().any(|(l, m)| *l == line && m.contains(want)),
                "{needle}: {p:?}"
            );
        }
        assert!(
            p.iter().all(|(_, m)| !m.contains("hunter2")),
            "the password is never repeated: {p:?}"
        );
        let text = with_store("pool_size = 4\nmigrate = \"auto\"");
        let p = problems(&text);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p.iter().all(|(_, m)| m.contains("set store.url too")),
            "{p:?}"
        );
    }
}
