//! The team admin's page: plain HTML and script, no build step and no secret of its own; it
//! calls the API with the admin's app session. It may not be framed (clickjacking), and its
//! script may talk only to this origin.

use super::response::AdminResponse;
use http::Method;

const PAGE: &str = include_str!("page.html");

/// Answers a request for the page itself (`path` is what follows the configured path).
pub fn serve(method: &Method, path: &str) -> AdminResponse {
    if !(path.is_empty() || path == "/") {
        return AdminResponse::error(404, "not_found", "no such page");
    }
    if method != Method::GET && method != Method::HEAD {
        let mut r = AdminResponse::error(405, "method_not_allowed", "the page is read with GET");
        r.headers.push(("allow", "GET, HEAD".into()));
        return r;
    }
    AdminResponse {
        status: 200,
        content_type: "text/html; charset=utf-8",
        headers: vec![
            ("x-frame-options", "DENY".into()),
            (
                "content-security-policy",
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
                    .into(),
            ),
            ("referrer-policy", "no-referrer".into()),
            ("x-content-type-options", "nosniff".into()),
        ],
        body: PAGE.as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_cannot_be_framed_and_only_reads() {
        let r = serve(&Method::GET, "/");
        assert_eq!(r.status, 200);
        let header = |n: &str| {
            r.headers
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(header("x-frame-options").as_deref(), Some("DENY"));
        assert!(header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'"));
        assert!(String::from_utf8(r.body)
            .unwrap()
            .contains("Generate SCIM API key"));
        assert_eq!(serve(&Method::POST, "").status, 405);
        assert_eq!(serve(&Method::GET, "/other").status, 404);
    }
}
