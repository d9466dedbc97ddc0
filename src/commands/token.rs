//! `scimgate token list` and `scimgate token revoke`: the operator's view of every SCIM API key,
//! those of the config file and those kept in the store, and the revocation of store keys. No
//! secret or hash is ever printed: a key is shown by its public id.

use super::CommandError;
use crate::auth::store_keys::CACHE_BOUND;
use crate::config::{self, Config};
use crate::store::engine::{self, StoreSettings};
use crate::store::keys::{self, Revocation, StoreKey};
use crate::store::Store;
use std::path::Path;
use std::sync::Arc;

/// The list's columns.
const HEADINGS: [&str; 8] = [
    "ID",
    "TENANT",
    "LABEL",
    "SOURCE",
    "CREATED",
    "CREATED BY",
    "LAST USED",
    "REVOKED",
];

/// `scimgate token list --config FILE`: every key, the config's first (in file order), then
/// the store's by tenant and id, revoked ones included.
pub fn list(path: &Path) -> Result<String, CommandError> {
    let config = config::load(path)?;
    let stored = match open_existing(&config)? {
        Some(store) => on_runtime(async move { store.all_keys().await })?,
        None => Vec::new(),
    };
    let dash = || "-".to_string();
    let mut rows: Vec<[String; 8]> = config
        .keyring
        .keys()
        .iter()
        .map(|k| {
            let (id, tenant) = (k.id.clone(), k.tenant.name.clone());
            [
                id,
                tenant,
                dash(),
                "config".into(),
                dash(),
                dash(),
                dash(),
                dash(),
            ]
        })
        .collect();
    rows.extend(stored.into_iter().map(store_row));
    Ok(table(&rows))
}

/// `scimgate token revoke --config FILE KEY_ID`: revokes a store key at once (gateways refuse it
/// within [`CACHE_BOUND`]); a config key is refused with what to do instead.
pub fn revoke(path: &Path, id: &str) -> Result<String, CommandError> {
    let config = config::load(path)?;
    if let Some(k) = config.keyring.keys().iter().find(|k| k.id == id) {
        return Err(CommandError::ConfigKey {
            id: id.to_string(),
            tenant: k.tenant.name.clone(),
            file: path.to_path_buf(),
        });
    }
    let Some(store) = open_existing(&config)? else {
        return Err(CommandError::UnknownKey(id.to_string()));
    };
    let key_id = id.to_string();
    let done = on_runtime(async move { store.revoke_key(&key_id, None, &keys::now()).await })?;
    match done {
        Revocation::Revoked(k) => Ok(format!(
            "revoked key {} of tenant {:?} at {}; every gateway refuses it within {} s",
            k.id,
            k.tenant,
            k.revoked_at.unwrap_or_default(),
            CACHE_BOUND.as_secs()
        )),
        Revocation::AlreadyRevoked(k) => Ok(format!(
            "key {} of tenant {:?} was already revoked at {}",
            k.id,
            k.tenant,
            k.revoked_at.unwrap_or_default()
        )),
        Revocation::Unknown => Err(CommandError::UnknownKey(id.to_string())),
    }
}

/// The config's store, or none when it is a SQLite file that does not exist yet (no key can be
/// in it, and listing must not create it).
pub(super) fn open_existing(config: &Config) -> Result<Option<Arc<dyn Store>>, CommandError> {
    if let StoreSettings::Sqlite(file) = &config.store {
        if !file.exists() {
            return Ok(None);
        }
    }
    engine::open(&config.store)
        .map(Some)
        .map_err(CommandError::Store)
}

/// Runs one store call to its end on a runtime of its own.
pub(super) fn on_runtime<T>(
    work: impl std::future::Future<Output = Result<T, crate::store::StoreError>>,
) -> Result<T, CommandError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CommandError::Runtime)?;
    rt.block_on(work)
        .map_err(|e| CommandError::Store(crate::store::OpenError::Store(e)))
}

/// A store key as a row of the list: no hash.
fn store_row(k: StoreKey) -> [String; 8] {
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let label = if k.label.is_empty() {
        "-".into()
    } else {
        k.label
    };
    [
        k.id,
        k.tenant,
        label,
        "store".into(),
        k.created_at,
        k.created_by,
        or_dash(k.last_used_at),
        or_dash(k.revoked_at),
    ]
}

/// The rows under the headings, in aligned columns; control characters a label or name may
/// hold are shown as `?`, so a row stays one line of plain text.
fn table(rows: &[[String; 8]]) -> String {
    let clean = |v: &str| -> String {
        v.chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect()
    };
    let cells: Vec<Vec<String>> = std::iter::once(HEADINGS.map(String::from))
        .chain(rows.iter().cloned())
        .map(|r| r.iter().map(|v| clean(v)).collect())
        .collect();
    let widths: Vec<usize> = (0..HEADINGS.len())
        .map(|i| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    cells
        .iter()
        .map(|r| {
            let padded: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(v, w)| format!("{v:<w$}"))
                .collect();
            padded.join("  ").trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_aligns_its_columns_and_keeps_each_row_on_one_line() {
        let row = |id: &str, label: &str| {
            let v = |s: &str| s.to_string();
            [
                v(id),
                v("acme"),
                v(label),
                v("store"),
                v("t"),
                v("me"),
                v("-"),
                v("-"),
            ]
        };
        let text = table(&[row("k1", "Entra\nfake row"), row("longer-id", "Okta")]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("ID         TENANT"), "{text}");
        assert!(lines[1].contains("Entra?fake row"), "{text}");
        let tenant_at = |l: &str| l.find("acme");
        assert_eq!(tenant_at(lines[1]), tenant_at(lines[2]), "{text}");
    }
}
