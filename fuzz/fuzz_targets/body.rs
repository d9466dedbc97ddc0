//! The strict body scanner every SCIM write and guarded request goes through
//! (`guard::body::scan_json`, `scan_form`, and `readings`, every reading of a guarded body):
//! never panics or overflows the stack, and accepts only what serde_json also reads as one
//! object.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scimgate::guard::body::{readings, scan_form, scan_json, BodyKind};

fuzz_target!(|data: &[u8]| {
    if let Ok(scan) = scan_json(data, 1 << 20) {
        assert!(scan.value.is_object(), "scan_json accepted a non-object");
        let again: serde_json::Value = serde_json::from_slice(data).expect("serde reads it too");
        assert_eq!(again, scan.value);
    }
    let _ = scan_form(data, 1 << 20);
    for kind in [BodyKind::Json, BodyKind::Form] {
        let _ = readings(kind, data, 1 << 20);
    }
});
