//! The provisioning log: one structured event per SCIM write and per team admin's SCIM action
//! (enable, disable, key created or revoked, with who did it) — the gateway's own version of
//! Entra's provisioning logs — emitted as a tracing event and, when configured, appended to a
//! JSON-lines file that `scimgate log` reads back.

use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One SCIM write, or one team admin's SCIM action.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProvisioningEvent {
    /// RFC 3339 time the request finished.
    pub time: String,
    /// The gateway's request id.
    pub request_id: String,
    /// The tenant the key acts for.
    pub tenant: String,
    /// The id of the key used (never the secret).
    pub key_id: String,
    /// `create`, `replace`, `patch` or `delete` (a team admin's: `scim_enable`, `scim_disable`,
    /// `key_create`, `key_revoke`).
    pub operation: &'static str,
    /// The SCIM id of the user, when known.
    pub scim_id: Option<String>,
    /// The backend's id of the user (scimgate uses it as the SCIM id).
    pub backend_id: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// `success` or `failure`.
    pub result: &'static str,
    /// The SCIM error detail of a failure.
    pub detail: Option<String>,
    /// Time spent, in milliseconds.
    pub latency_ms: f64,
    /// Who acted, for a team admin's action (their backend user id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// Why the provisioning log file cannot be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Its folder cannot be created.
    #[error("cannot create {}: {source}", dir.display())]
    CreateDir {
        /// The folder.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file cannot be opened for appending.
    #[error("cannot open the provisioning log {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Where provisioning events go.
pub struct ProvisioningLog {
    file: Option<(PathBuf, Mutex<File>)>,
}

impl ProvisioningLog {
    /// A log that appends to `path` (created if missing), or only emits tracing events.
    pub fn open(path: Option<&Path>) -> Result<Self, LogError> {
        let file = match path {
            Some(p) => {
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| LogError::CreateDir {
                        dir: dir.to_path_buf(),
                        source,
                    })?;
                }
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|source| LogError::Open {
                        path: p.to_path_buf(),
                        source,
                    })?;
                Some((p.to_path_buf(), Mutex::new(f)))
            }
            None => None,
        };
        Ok(ProvisioningLog { file })
    }

    /// Records one event.
    pub fn record(&self, e: &ProvisioningEvent) {
        tracing::info!(
            target: "scimgate::provisioning",
            request_id = %e.request_id,
            tenant = %e.tenant,
            key_id = %e.key_id,
            operation = e.operation,
            scim_id = e.scim_id.as_deref().unwrap_or("-"),
            status = e.status,
            result = e.result,
            latency_ms = e.latency_ms,
            detail = e.detail.as_deref().unwrap_or(""),
            actor = e.actor.as_deref().unwrap_or("-"),
            "scim write"
        );
        let Some((path, file)) = &self.file else {
            return;
        };
        let mut line = serde_json::to_string(e).unwrap_or_default();
        line.push('\n');
        let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(err) = f.write_all(line.as_bytes()) {
            tracing::error!(path = %path.display(), error = %err, "cannot write the provisioning log");
        }
    }
}

/// The last `n` lines of a provisioning log file.
pub fn read_recent(path: &Path, n: usize) -> Result<Vec<String>, LogError> {
    let unreadable = |source| LogError::Read {
        path: path.to_path_buf(),
        source,
    };
    let f = File::open(path).map_err(unreadable)?;
    let mut ring = std::collections::VecDeque::with_capacity(n.min(10_000));
    for line in BufReader::new(f).lines() {
        let line = line.map_err(unreadable)?;
        if ring.len() == n {
            ring.pop_front();
        }
        if n > 0 {
            ring.push_back(line);
        }
    }
    Ok(ring.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(op: &'static str) -> ProvisioningEvent {
        ProvisioningEvent {
            time: "2026-11-29T00:00:00Z".into(),
            request_id: "r1".into(),
            tenant: "acme".into(),
            key_id: "k1".into(),
            operation: op,
            scim_id: Some("7".into()),
            backend_id: Some("7".into()),
            status: 201,
            result: "success",
            detail: None,
            latency_ms: 1.5,
            actor: None,
        }
    }

    #[test]
    fn appends_json_lines_and_reads_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/provisioning.jsonl");
        let log = ProvisioningLog::open(Some(&path)).unwrap();
        for op in ["create", "patch", "delete"] {
            log.record(&event(op));
        }
        let tail = read_recent(&path, 2).unwrap();
        assert_eq!(tail.len(), 2);
        let last: serde_json::Value = serde_json::from_str(&tail[1]).unwrap();
        assert_eq!(last["operation"], "delete");
        assert_eq!(last["key_id"], "k1");
        assert_eq!(read_recent(&path, 10).unwrap().len(), 3);
    }
}
