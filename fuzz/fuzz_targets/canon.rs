//! Request-target canonicalisation (`guard::canon`): never panics; the lenient reading is
//! idempotent and among the lenient readings; and for every target `canonicalize` accepts, every
//! lenient reading is the canonical path (the guard's no-bypass property) and the canonical target
//! canonicalises to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scimgate::guard::canon::{canonicalize, lenient_path, lenient_paths, origin_form};

fuzz_target!(|data: &[u8]| {
    let lenient = lenient_path(data);
    assert_eq!(
        lenient_path(lenient.as_bytes()),
        lenient,
        "lenient_path is idempotent"
    );
    let readings = lenient_paths(data);
    assert!(
        readings.contains(&lenient),
        "{readings:?} lacks {lenient:?}"
    );
    if let Ok(c) = canonicalize(data) {
        assert_eq!(
            lenient, c.path,
            "no bypass: the worst-case reading is the canonical path"
        );
        assert_eq!(
            readings,
            vec![c.path.clone()],
            "every lenient reading agrees"
        );
        assert_eq!(
            canonicalize(c.path.as_bytes()).map(|x| x.path),
            Ok(c.path.clone()),
            "the canonical path is canonical"
        );
        assert_eq!(
            canonicalize(c.to_target().as_bytes()),
            Ok(c.clone()),
            "canonicalize(c.to_target()) == c"
        );
    }
    let _ = origin_form(data, Some("gw.example.com"));
    let _ = origin_form(data, None);
});
