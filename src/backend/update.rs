//! Writing a user back, as `[users.update]` says: a partial update sends only the mapped fields;
//! `style = "replace"` reads the whole native object, overlays the mapped fields and writes every
//! field back; a version-checked write sends the version of that read and, when the backend
//! answers 412 (the user changed in between), reads again and re-applies, a bounded number of
//! times, so a change made in the app meanwhile is never overwritten.

use super::calls::{mismatch, valid_id, Backend, Call, Vars, Versioned};
use super::mapping;
use super::spec::UpdateStyle;
use super::version;
use crate::auth::Tenant;
use crate::scim::error::ScimError;
use serde_json::Value;

impl Backend {
    /// Writes a SCIM update to user `id`: `fields` computes the native fields (with
    /// [`mapping::to_native`]) from the native user as read (`null` when nothing was read), again
    /// after every fresh read. `read` is the user as just read, if the caller has it (saves the
    /// first read). `None` when the backend does not know the user.
    pub async fn update<F>(
        &self,
        tenant: &Tenant,
        id: &str,
        fields: F,
        read: Option<Versioned>,
    ) -> Result<Option<Value>, ScimError>
    where
        F: Fn(&Value) -> Result<Value, ScimError>,
    {
        let paths = mapping::update_paths(&self.api);
        self.modify(tenant, id, read, &paths, fields).await
    }

    /// Read-modify-write of one user: `change` computes, from the native user as read (`null`
    /// for a partial update without version that was given no read), the native fields to write,
    /// all under `paths`. A replacing backend gets the user as read with those paths overlaid;
    /// a 412 starts over from a fresh read. Answers the updated user, or `None` when the backend
    /// does not know it.
    pub async fn modify<F>(
        &self,
        tenant: &Tenant,
        id: &str,
        mut read: Option<Versioned>,
        paths: &[&[String]],
        change: F,
    ) -> Result<Option<Value>, ScimError>
    where
        F: Fn(&Value) -> Result<Value, ScimError>,
    {
        if !valid_id(id) {
            return Ok(None);
        }
        let update = &self.api.update;
        let reads = update.style == UpdateStyle::Replace || update.version.is_some();
        let attempts = update.version.as_ref().map_or(1, |v| v.max_attempts);
        for attempt in 1..=attempts {
            let current = match (reads, read.take()) {
                (_, Some(r)) => Some(r),
                (false, None) => None,
                (true, None) => match self.get_versioned(tenant, id).await? {
                    Some(r) => Some(r),
                    None => return Ok(None),
                },
            };
            let user = current.as_ref().map(|c| &c.user);
            let fields = change(user.unwrap_or(&Value::Null))?;
            let mut body = match (update.style, user) {
                (UpdateStyle::Replace, Some(u)) => mapping::overlay(u, &fields, paths),
                _ => fields,
            };
            let mut call = Call::new(
                "update",
                "update user",
                &update.call,
                Vars::user(tenant, id),
            );
            if let Some(v) = &update.version {
                let Some(found) = current.as_ref().and_then(|c| c.version.as_ref()) else {
                    return Err(mismatch(
                        "update user",
                        "the user was read without a version where users.update.version says (from_header / from_field); nothing was written",
                    ));
                };
                let header = version::send(&v.send, found, &mut body)
                    .map_err(|e| mismatch("update user", &e.to_string()))?;
                call.headers.extend(header);
            }
            call.body = Some(&body);
            let resp = self.call(call).await?;
            match resp.status {
                404 => return Ok(None),
                412 => {
                    self.telemetry.metrics.version_conflict();
                    tracing::info!(tenant = %tenant.name, id, attempt, "the user changed in the user service between read and write; reading it again");
                }
                428 => return Err(precondition_required()),
                _ => return self.user_from(&update.call, &resp, "update user").map(Some),
            }
        }
        Err(kept_changing(id, attempts))
    }
}

/// The backend wants a version-checked write the config does not describe: the gateway's own
/// configuration is at fault, so `500` (not a `502` blaming the backend).
fn precondition_required() -> ScimError {
    ScimError::internal(
        "update user: the user service requires a version-checked write (428 Precondition Required) and the gateway sent no version: describe it in [users.update.version] (e.g. from_header = \"ETag\"); nothing was written",
    )
}

/// Every version-checked write was refused as stale: the user kept changing in the backend. The
/// client did nothing wrong and a later retry will most likely pass, so this is `503` with
/// `Retry-After` (which Entra and Okta retry), not `412` (the client's own `If-Match`) or `409`
/// (a conflict a retry cannot fix).
fn kept_changing(id: &str, attempts: u32) -> ScimError {
    ScimError::unavailable(format!(
        "update user: user {id:?} kept changing in the user service while the gateway wrote it ({attempts} version-checked writes refused with 412); nothing was overwritten, retry later"
    ))
    .with_retry_after(1)
}
