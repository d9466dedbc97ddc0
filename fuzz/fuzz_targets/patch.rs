//! PATCH: arbitrary bytes parsed as JSON, then `scim::patch::parse_request` and `apply` on a fixed
//! user. Never panics; a successful PATCH yields a user in canonical form (normalising it again
//! changes nothing) that still has its userName.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scimgate::scim::normalize::normalize_user;
use scimgate::scim::patch;
use serde_json::{json, Value};
use std::sync::OnceLock;

fn user() -> &'static Value {
    static USER: OnceLock<Value> = OnceLock::new();
    USER.get_or_init(|| {
        normalize_user(&json!({
            "userName": "alice@contoso.com", "externalId": "ext-7", "active": true,
            "displayName": "Alice Smith",
            "emails": [{"primary": true, "type": "work", "value": "alice@contoso.com"}],
            "name": {"formatted": "Alice Smith", "familyName": "Smith", "givenName": "Alice"},
            "roles": [{"value": "Admin", "display": "Admin"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
                {"department": "Sales", "employeeNumber": "701984", "manager": {"value": "9"}}
        }))
        .expect("the fixture user is valid")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(ops) = patch::parse_request(&body) else {
        return;
    };
    if let Ok(out) = patch::apply(user(), &ops) {
        assert!(out["userName"].is_string(), "userName survives: {out}");
        let again = normalize_user(&out).expect("a patched user normalises");
        assert_eq!(again, out, "a patched user is already canonical");
        // Applying the same operations again never panics either.
        let _ = patch::apply(&out, &ops);
    }
});
