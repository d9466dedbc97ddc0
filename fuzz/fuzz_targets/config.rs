//! `config::from_str` on arbitrary UTF-8: never panics, and its errors (which compute line and
//! column from byte spans) always render.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match scimgate::config::from_str(text, Path::new("/nonexistent/fuzz/scimgate.toml")) {
        Ok(config) => {
            let _ = format!("{config:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
