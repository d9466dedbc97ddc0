//! What a SCIM client is told when a resource the backend had just created was removed again
//! (or could not be) because a later step of the create failed.

use crate::auth::Tenant;
use crate::scim::error::ScimError;

/// `cause`, with its detail saying whether the `kind` ("user", "group") created as `id` was
/// deleted again (`undone`) or is left in the user service for an operator, which is logged.
pub fn explained<T>(
    cause: ScimError,
    kind: &str,
    tenant: &Tenant,
    id: &str,
    undone: Result<T, ScimError>,
) -> ScimError {
    let detail = match undone {
        Ok(_) => format!(
            "{}; the {kind} created in the user service (id {id}) was deleted again, nothing was applied",
            cause.detail
        ),
        Err(undo) => {
            tracing::error!(tenant = %tenant.name, id, cause = %cause, undo = %undo, "{kind} create half-applied");
            format!(
                "{}; the {kind} was created in the user service as id {id} and could not be removed ({}): delete it there or retry",
                cause.detail, undo.detail
            )
        }
    };
    cause.with_detail(detail)
}
