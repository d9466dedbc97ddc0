//! `scim::filter::parse` on arbitrary UTF-8: never panics, never recurses past its limits, and
//! whatever it accepts prints back to text that parses to the same filter; evaluating the filter
//! against a user never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scimgate::scim::filter::{self, MAX_FILTER_LEN};
use scimgate::scim::schema::{Home, USER};
use serde_json::{json, Value};
use std::sync::OnceLock;

fn user() -> &'static Value {
    static USER_JSON: OnceLock<Value> = OnceLock::new();
    USER_JSON.get_or_init(|| {
        json!({
            "id": "7", "externalId": "ext-7", "userName": "alice@contoso.com", "active": true,
            "displayName": "Alice Smith", "title": "Engineer",
            "emails": [{"primary": true, "type": "work", "value": "alice@contoso.com"},
                       {"type": "home", "value": "a@home.example"}],
            "name": {"givenName": "Alice", "familyName": "Smith"},
            "meta": {"created": "2026-01-01T00:00:00Z", "lastModified": "2026-01-02T00:00:00Z"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
                {"department": "Sales", "employeeNumber": "701984", "manager": {"value": "9"}}
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = filter::parse(text) {
        let _ = filter::matches(&parsed, user());
        let _ = filter::eq_constraints(&parsed);
        let printed = parsed.to_string();
        // Canonical names can be longer than what was typed (URN-qualified enterprise names).
        if printed.len() <= MAX_FILTER_LEN {
            let again = filter::parse(&printed)
                .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
            assert_eq!(
                again.to_string(),
                printed,
                "printing is stable for {text:?}"
            );
        }
    }
    if let Some(emails) = USER.attr("emails") {
        if let Ok(inner) = filter::parse_element_filter(emails, Home::Core, text) {
            for element in user()["emails"].as_array().into_iter().flatten() {
                let _ = filter::matches_element(&inner, element);
            }
        }
    }
});
