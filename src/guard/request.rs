//! Header-level ambiguity checks for guarded routes: method overrides, path-override headers, conflicting credentials and request-framing games.

use std::fmt;

use http::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, COOKIE, HOST, TRANSFER_ENCODING,
};
use http::{HeaderMap, Method, Version};

use super::body::BodyScan;
use super::canon;
use crate::scim::fold::{fold_lenient, key_form};

/// Header names (compared after lower-casing and `_` → `-`) that override the method.
pub const METHOD_OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Header names (compared after lower-casing and `_` → `-`) that some frameworks (Symfony,
/// Zend, IIS rewrite) take as the request path instead of the request line.
pub const PATH_OVERRIDE_HEADERS: [&str; 2] = ["x-original-url", "x-rewrite-url"];

/// Why a request's headers were refused; `Display` gives a sentence a client can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderReject {
    /// A method-override header or `_method` parameter (its name).
    MethodOverride(String),
    /// A header that rewrites the request path (its name).
    PathOverride(String),
    /// A method token that is not upper-case (`delete` may be read as `DELETE`).
    NonCanonicalMethod(String),
    /// HTTP/0.9.
    UnsupportedVersion,
    /// More than one `Host` header.
    DuplicateHost,
    /// More than one `Authorization` header.
    DuplicateAuthorization,
    /// `Authorization` together with a session cookie.
    ConflictingCredentials,
    /// The same session cookie sent twice (its name).
    DuplicateSessionCookie(String),
    /// `Content-Length` together with `Transfer-Encoding`.
    TransferAndLength,
    /// More than one `Content-Length` (headers or a comma list).
    DuplicateContentLength,
    /// A `Content-Length` that is not a plain decimal number.
    InvalidContentLength,
    /// `Transfer-Encoding` on an HTTP/1.0 request.
    Http10Chunked,
    /// A `Transfer-Encoding` other than a single `chunked`, or any on HTTP/2 and later.
    BadTransferEncoding(String),
    /// A `Content-Encoding` other than identity.
    ContentEncoding(String),
}

impl fmt::Display for HeaderReject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderReject::MethodOverride(h) => {
                write!(f, "method override ({h}) is not accepted on this route")
            }
            HeaderReject::PathOverride(h) => write!(f, "the {h} header is not accepted"),
            HeaderReject::NonCanonicalMethod(m) => {
                write!(f, "the method {m:?} must be written in upper case")
            }
            HeaderReject::UnsupportedVersion => f.write_str("HTTP/0.9 is not supported"),
            HeaderReject::DuplicateHost => f.write_str("the request has more than one Host header"),
            HeaderReject::DuplicateAuthorization => {
                f.write_str("the request has more than one Authorization header")
            }
            HeaderReject::ConflictingCredentials => f.write_str(
                "send either an Authorization header or a session cookie on this route, not both",
            ),
            HeaderReject::DuplicateSessionCookie(c) => {
                write!(f, "the session cookie {c:?} is sent more than once")
            }
            HeaderReject::TransferAndLength => {
                f.write_str("the request has both Content-Length and Transfer-Encoding")
            }
            HeaderReject::DuplicateContentLength => {
                f.write_str("the request has more than one Content-Length")
            }
            HeaderReject::InvalidContentLength => f.write_str("the Content-Length is not a number"),
            HeaderReject::Http10Chunked => {
                f.write_str("Transfer-Encoding is not allowed on an HTTP/1.0 request")
            }
            HeaderReject::BadTransferEncoding(te) => {
                write!(
                    f,
                    "the Transfer-Encoding {te:?} is not accepted (only chunked)"
                )
            }
            HeaderReject::ContentEncoding(ce) => {
                write!(
                    f,
                    "the Content-Encoding {ce:?} is not accepted (only identity)"
                )
            }
        }
    }
}

impl std::error::Error for HeaderReject {}

/// Header checks for a request on (or possibly reaching) a guarded route. Rejects, in this
/// order: HTTP/0.9; a method token with lower-case letters; any method-override header
/// ([`METHOD_OVERRIDE_HEADERS`], any case, `_` for `-`) or path-override header
/// ([`PATH_OVERRIDE_HEADERS`]); two `Host` headers; two `Authorization` headers; a session
/// cookie (names in `session_cookies`, compared after decoding and [`fold_lenient`])
/// sent twice, or together with `Authorization`; `Transfer-Encoding` on HTTP/1.0, on HTTP/2+,
/// or other than one `chunked`; `Content-Length` with `Transfer-Encoding`; more than one or a
/// non-numeric `Content-Length`; a `Content-Encoding` other than identity.
///
/// A `_method` query parameter is refused by [`canon::canonicalize`], a `_method` body field
/// by [`check_params`].
pub fn check_headers(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
    session_cookies: &[String],
) -> Result<(), HeaderReject> {
    if version == Version::HTTP_09 {
        return Err(HeaderReject::UnsupportedVersion);
    }
    check_method(method)?;
    check_overrides(headers)?;
    if headers.get_all(HOST).iter().count() > 1 {
        return Err(HeaderReject::DuplicateHost);
    }
    check_credentials(headers, session_cookies)?;
    check_framing(version, headers)?;
    check_content_encoding(headers)
}

/// The check every request needs, guarded route or not: no path-override header, since it
/// could point a harmless-looking request line at a guarded route.
pub fn check_global(headers: &HeaderMap) -> Result<(), HeaderReject> {
    match find_header(headers, &PATH_OVERRIDE_HEADERS) {
        Some(name) => Err(HeaderReject::PathOverride(name)),
        None => Ok(()),
    }
}

/// Refuses a `_method` field (any spelling [`canon::is_method_override_param`] accepts) in a scanned
/// JSON or form body.
pub fn check_params(scan: &BodyScan) -> Result<(), HeaderReject> {
    match scan
        .top_level_keys
        .iter()
        .find(|k| canon::is_method_override_param(k))
    {
        Some(k) => Err(HeaderReject::MethodOverride(k.clone())),
        None => Ok(()),
    }
}

/// Method tokens must not contain lower-case letters.
fn check_method(method: &Method) -> Result<(), HeaderReject> {
    let m = method.as_str();
    if m.bytes().any(|b| b.is_ascii_lowercase()) {
        Err(HeaderReject::NonCanonicalMethod(m.to_owned()))
    } else {
        Ok(())
    }
}

/// Method- and path-override headers.
fn check_overrides(headers: &HeaderMap) -> Result<(), HeaderReject> {
    if let Some(name) = find_header(headers, &METHOD_OVERRIDE_HEADERS) {
        return Err(HeaderReject::MethodOverride(name));
    }
    check_global(headers)
}

/// The first header whose normalised name is in `names`.
fn find_header(headers: &HeaderMap, names: &[&str]) -> Option<String> {
    headers
        .keys()
        .map(|k| k.as_str().replace('_', "-"))
        .find(|k| names.contains(&k.as_str()))
}

/// One `Authorization`, and not together with a session cookie; each session cookie once.
fn check_credentials(headers: &HeaderMap, session_cookies: &[String]) -> Result<(), HeaderReject> {
    let auth = headers.get_all(AUTHORIZATION).iter().count();
    if auth > 1 {
        return Err(HeaderReject::DuplicateAuthorization);
    }
    let names = cookie_names(headers);
    for wanted in session_cookies {
        let key = cookie_key(wanted);
        let count = names.iter().filter(|n| **n == key).count();
        if count > 1 {
            return Err(HeaderReject::DuplicateSessionCookie(wanted.clone()));
        }
        if count == 1 && auth == 1 {
            return Err(HeaderReject::ConflictingCredentials);
        }
    }
    Ok(())
}

/// Whether the request carries one of the `session_cookies`, names compared as a lenient binder
/// would ([`key_form`]: case, separators and look-alikes aside).
pub fn has_session_cookie(headers: &HeaderMap, session_cookies: &[String]) -> bool {
    cookie_names(headers).iter().any(|name| {
        session_cookies
            .iter()
            .any(|wanted| key_form(wanted) == key_form(name))
    })
}

/// Normalised names of all cookies in all `Cookie` headers.
fn cookie_names(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split([';', ','])
                .map(|pair| cookie_key(pair.split('=').next().unwrap_or_default()))
                .collect::<Vec<_>>()
        })
        .filter(|n| !n.is_empty())
        .collect()
}

/// The comparison form of a cookie name: fully decoded, folded, trimmed.
fn cookie_key(name: &str) -> String {
    fold_lenient(canon::lenient_decode(name.trim().as_bytes()).trim())
}

/// `Transfer-Encoding` / `Content-Length` rules.
fn check_framing(version: Version, headers: &HeaderMap) -> Result<(), HeaderReject> {
    let te: Vec<String> = headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    if !te.is_empty() {
        if version == Version::HTTP_10 {
            return Err(HeaderReject::Http10Chunked);
        }
        if headers.contains_key(CONTENT_LENGTH) {
            return Err(HeaderReject::TransferAndLength);
        }
        let joined = te.join(", ");
        if version != Version::HTTP_11
            || te.len() != 1
            || !te[0].trim().eq_ignore_ascii_case("chunked")
        {
            return Err(HeaderReject::BadTransferEncoding(joined));
        }
    }
    check_content_length(headers)
}

/// At most one `Content-Length`, a plain decimal.
fn check_content_length(headers: &HeaderMap) -> Result<(), HeaderReject> {
    let values: Vec<_> = headers.get_all(CONTENT_LENGTH).iter().collect();
    match values.as_slice() {
        [] => Ok(()),
        [one] => {
            let text = one
                .to_str()
                .map_err(|_| HeaderReject::InvalidContentLength)?
                .trim();
            if text.contains(',') {
                Err(HeaderReject::DuplicateContentLength)
            } else if text.is_empty()
                || !text.bytes().all(|b| b.is_ascii_digit())
                || text.parse::<u64>().is_err()
            {
                Err(HeaderReject::InvalidContentLength)
            } else {
                Ok(())
            }
        }
        _ => Err(HeaderReject::DuplicateContentLength),
    }
}

/// Only identity (or no) content coding.
fn check_content_encoding(headers: &HeaderMap) -> Result<(), HeaderReject> {
    for v in headers.get_all(CONTENT_ENCODING) {
        let text = String::from_utf8_lossy(v.as_bytes());
        let identity = text
            .split(',')
            .all(|c| c.trim().eq_ignore_ascii_case("identity"));
        if !identity {
            return Err(HeaderReject::ContentEncoding(text.into_owned()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::body::{scan_form, scan_json};
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn sessions() -> Vec<String> {
        vec!["session".to_owned(), "SID".to_owned()]
    }

    type Case = (
        &'static str,
        Version,
        Vec<(&'static str, &'static str)>,
        Result<(), HeaderReject>,
    );

    fn cases() -> Vec<Case> {
        use HeaderReject as R;
        let v11 = Version::HTTP_11;
        vec![
            ("PUT", v11, vec![], Ok(())),
            (
                "PUT",
                v11,
                vec![("authorization", "Bearer x"), ("content-length", "12")],
                Ok(()),
            ),
            (
                "PUT",
                v11,
                vec![("cookie", "session=abc; theme=dark")],
                Ok(()),
            ),
            (
                "PUT",
                v11,
                vec![("cookie", "session=abc"), ("cookie", "theme=dark")],
                Ok(()),
            ),
            (
                "PUT",
                v11,
                vec![("authorization", "Bearer x"), ("cookie", "theme=dark")],
                Ok(()),
            ),
            ("PUT", v11, vec![("transfer-encoding", "chunked")], Ok(())),
            ("PUT", v11, vec![("content-encoding", "identity")], Ok(())),
            (
                "PUT",
                Version::HTTP_2,
                vec![("content-length", "3")],
                Ok(()),
            ),
            (
                "PUT",
                Version::HTTP_10,
                vec![("content-length", "3")],
                Ok(()),
            ),
            (
                "delete",
                v11,
                vec![],
                Err(R::NonCanonicalMethod("delete".into())),
            ),
            ("Put", v11, vec![], Err(R::NonCanonicalMethod("Put".into()))),
            ("PUT", Version::HTTP_09, vec![], Err(R::UnsupportedVersion)),
            (
                "POST",
                v11,
                vec![("x-http-method-override", "PUT")],
                Err(R::MethodOverride("x-http-method-override".into())),
            ),
            (
                "POST",
                v11,
                vec![("X-HTTP-Method-Override", "PUT")],
                Err(R::MethodOverride("x-http-method-override".into())),
            ),
            (
                "POST",
                v11,
                vec![("x-http-method", "DELETE")],
                Err(R::MethodOverride("x-http-method".into())),
            ),
            (
                "POST",
                v11,
                vec![("X-Method-Override", "DELETE")],
                Err(R::MethodOverride("x-method-override".into())),
            ),
            (
                "POST",
                v11,
                vec![("x_http_method_override", "PUT")],
                Err(R::MethodOverride("x-http-method-override".into())),
            ),
            (
                "GET",
                v11,
                vec![("x-original-url", "/api/me/email")],
                Err(R::PathOverride("x-original-url".into())),
            ),
            (
                "GET",
                v11,
                vec![("X-Rewrite-URL", "/api/me/email")],
                Err(R::PathOverride("x-rewrite-url".into())),
            ),
            (
                "PUT",
                v11,
                vec![("host", "a"), ("host", "b")],
                Err(R::DuplicateHost),
            ),
            (
                "PUT",
                v11,
                vec![("authorization", "Bearer a"), ("authorization", "Bearer b")],
                Err(R::DuplicateAuthorization),
            ),
            (
                "PUT",
                v11,
                vec![("authorization", "Bearer a"), ("cookie", "session=abc")],
                Err(R::ConflictingCredentials),
            ),
            (
                "PUT",
                v11,
                vec![
                    ("authorization", "Bearer a"),
                    ("cookie", "theme=x; sid=abc"),
                ],
                Err(R::ConflictingCredentials),
            ),
            (
                "PUT",
                v11,
                vec![("authorization", "Bearer a"), ("cookie", "%73ession=abc")],
                Err(R::ConflictingCredentials),
            ),
            (
                "PUT",
                v11,
                vec![("authorization", "Bearer a"), ("cookie", " Session =abc")],
                Err(R::ConflictingCredentials),
            ),
            (
                "PUT",
                v11,
                vec![("cookie", "session=a; session=b")],
                Err(R::DuplicateSessionCookie("session".into())),
            ),
            (
                "PUT",
                v11,
                vec![("cookie", "session=a"), ("cookie", "SESSION=b")],
                Err(R::DuplicateSessionCookie("session".into())),
            ),
            (
                "PUT",
                v11,
                vec![("content-length", "3"), ("transfer-encoding", "chunked")],
                Err(R::TransferAndLength),
            ),
            (
                "PUT",
                v11,
                vec![("content-length", "3"), ("content-length", "3")],
                Err(R::DuplicateContentLength),
            ),
            (
                "PUT",
                v11,
                vec![("content-length", "3, 3")],
                Err(R::DuplicateContentLength),
            ),
            (
                "PUT",
                v11,
                vec![("content-length", "+3")],
                Err(R::InvalidContentLength),
            ),
            (
                "PUT",
                v11,
                vec![("content-length", "0x10")],
                Err(R::InvalidContentLength),
            ),
            (
                "PUT",
                v11,
                vec![("content-length", "")],
                Err(R::InvalidContentLength),
            ),
            (
                "PUT",
                v11,
                vec![("content-length", "99999999999999999999999")],
                Err(R::InvalidContentLength),
            ),
            (
                "PUT",
                Version::HTTP_10,
                vec![("transfer-encoding", "chunked")],
                Err(R::Http10Chunked),
            ),
            (
                "PUT",
                Version::HTTP_2,
                vec![("transfer-encoding", "chunked")],
                Err(R::BadTransferEncoding("chunked".into())),
            ),
            (
                "PUT",
                v11,
                vec![("transfer-encoding", "gzip, chunked")],
                Err(R::BadTransferEncoding("gzip, chunked".into())),
            ),
            (
                "PUT",
                v11,
                vec![
                    ("transfer-encoding", "chunked"),
                    ("transfer-encoding", "chunked"),
                ],
                Err(R::BadTransferEncoding("chunked, chunked".into())),
            ),
            (
                "PUT",
                v11,
                vec![("transfer-encoding", "xchunked")],
                Err(R::BadTransferEncoding("xchunked".into())),
            ),
            (
                "PUT",
                v11,
                vec![("content-encoding", "gzip")],
                Err(R::ContentEncoding("gzip".into())),
            ),
            (
                "PUT",
                v11,
                vec![("content-encoding", "identity, deflate")],
                Err(R::ContentEncoding("identity, deflate".into())),
            ),
            (
                "PUT",
                v11,
                vec![("content-encoding", "")],
                Err(R::ContentEncoding(String::new())),
            ),
        ]
    }

    #[test]
    fn header_table() {
        for (method, version, h, want) in cases() {
            let m = Method::from_bytes(method.as_bytes()).expect("method");
            let got = check_headers(&m, version, &headers(&h), &sessions());
            assert_eq!(got, want, "{method} {version:?} {h:?}");
        }
    }

    #[test]
    fn global_check() {
        assert_eq!(
            check_global(&headers(&[("x-forwarded-for", "1.2.3.4")])),
            Ok(())
        );
        assert_eq!(
            check_global(&headers(&[("x_original_url", "/api/me")])),
            Err(HeaderReject::PathOverride("x-original-url".into()))
        );
    }

    #[test]
    fn method_override_params() {
        for name in [
            "_method",
            "_METHOD",
            "  _method",
            "_method[]",
            "_method[x]",
            ".method",
            " method",
            "_method ",
            "＿method",
        ] {
            assert!(canon::is_method_override_param(name), "{name:?}");
        }
        for name in ["method", "_methods", "x_method", "_meth od", ""] {
            assert!(!canon::is_method_override_param(name), "{name:?}");
        }
        let form = scan_form(b"email=x&.method=PUT", 1024).expect("form");
        assert_eq!(
            check_params(&form),
            Err(HeaderReject::MethodOverride(".method".into()))
        );
        let json = scan_json(br#"{"_Method":"DELETE"}"#, 1024).expect("json");
        assert_eq!(
            check_params(&json),
            Err(HeaderReject::MethodOverride("_Method".into()))
        );
        let fine = scan_json(br#"{"method":"x"}"#, 1024).expect("json");
        assert_eq!(check_params(&fine), Ok(()));
    }

    #[test]
    fn messages() {
        for (_, _, _, want) in cases() {
            if let Err(r) = want {
                assert!(r.to_string().len() > 15, "{r:?}");
            }
        }
        assert!(HeaderReject::PathOverride("x".into()).to_string().len() > 15);
    }
}
