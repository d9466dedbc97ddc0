//! Cross-site request refusal for the team-admin API: a write must come from the gateway's own
//! origin. Browsers say where a request comes from (`Sec-Fetch-Site`, `Origin`); a request that
//! says it comes from elsewhere is refused, and a write must carry a JSON body type, which a
//! cross-site form cannot send without a preflight the API never grants.

use http::header::{CONTENT_TYPE, HOST, ORIGIN};
use http::HeaderMap;

/// Why a write is refused as cross-site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossSite(pub String);

/// Checks that a write with `headers` comes from the gateway's own origin.
pub fn same_origin(headers: &HeaderMap) -> Result<(), CrossSite> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        if !matches!(site, "same-origin" | "none") {
            return Err(CrossSite(format!("Sec-Fetch-Site is {site:?}")));
        }
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let host = headers.get(HOST).and_then(|v| v.to_str().ok());
        let origin_host = origin.split_once("://").map(|(_, h)| h);
        if origin_host.is_none() || origin_host != host {
            return Err(CrossSite(format!("Origin {origin:?} is not this site")));
        }
    }
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(CrossSite(
            "a write must send Content-Type: application/json".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn same_origin_json_writes_pass() {
        let ok = [
            vec![("host", "gw.test"), ("content-type", "application/json")],
            vec![
                ("host", "gw.test:8443"),
                ("origin", "https://gw.test:8443"),
                ("sec-fetch-site", "same-origin"),
                ("content-type", "application/json; charset=utf-8"),
            ],
        ];
        for h in ok {
            assert_eq!(same_origin(&headers(&h)), Ok(()), "{h:?}");
        }
    }

    #[test]
    fn cross_site_and_form_writes_are_refused() {
        let refused = [
            vec![
                ("host", "gw.test"),
                ("sec-fetch-site", "cross-site"),
                ("content-type", "application/json"),
            ],
            vec![
                ("host", "gw.test"),
                ("sec-fetch-site", "same-site"),
                ("content-type", "application/json"),
            ],
            vec![
                ("host", "gw.test"),
                ("origin", "https://evil.test"),
                ("content-type", "application/json"),
            ],
            vec![
                ("host", "gw.test"),
                ("origin", "null"),
                ("content-type", "application/json"),
            ],
            vec![
                ("host", "gw.test"),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            vec![("host", "gw.test"), ("content-type", "text/plain")],
            vec![("host", "gw.test")],
        ];
        for h in refused {
            assert!(same_origin(&headers(&h)).is_err(), "{h:?}");
        }
    }
}
