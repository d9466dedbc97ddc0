//! Where a caller's identity travels, and the requests on protected routes where the backend
//! could see another identity than the guard decided on: a header the guard reads named in
//! `Connection` (a proxy drops it, and the backend falls back to another credential), a
//! credential in the query string next to another credential, and two spellings of a trusted
//! identity header (CGI-style servers read `X_User_Id` as `X-User-Id`).

use super::request;
use crate::headers::connection_tokens;
use crate::scim::fold::key_form;
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST};
use http::{HeaderMap, HeaderName};
use std::fmt;

/// Query parameters that lenient backends accept as credentials, when the config names none.
pub const DEFAULT_CREDENTIAL_PARAMS: [&str; 12] = [
    "access_token",
    "token",
    "auth",
    "auth_token",
    "authorization",
    "api_key",
    "jwt",
    "id_token",
    "bearer",
    "session",
    "session_id",
    "sid",
];

/// Why a request's identity channels were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelReject {
    /// `Connection` names a header the guard reads (its name).
    NominatedHeader(String),
    /// A credential in the query string together with another credential (the parameter).
    QueryCredential(String),
    /// Two spellings (or two copies) of an identity header (its configured name).
    IdentityHeaderSpellings(String),
}

impl fmt::Display for ChannelReject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelReject::NominatedHeader(h) => write!(
                f,
                "the Connection header names {h}, which the backend would then not receive"
            ),
            ChannelReject::QueryCredential(p) => write!(
                f,
                "the query parameter {p:?} carries a credential next to another one; send one credential"
            ),
            ChannelReject::IdentityHeaderSpellings(h) => {
                write!(f, "the {h} header is sent more than once or in several spellings")
            }
        }
    }
}

impl std::error::Error for ChannelReject {}

/// The comparison form of a header name: lower case, `_` read as `-`.
pub fn header_form(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// Checks the identity channels of a request on a protected route: no header the guard reads
/// is nominated hop-by-hop, each identity header comes once in one spelling, and a credential
/// in the query string (`credential_params`) is the only credential.
pub fn check(
    headers: &HeaderMap,
    query_keys: &[String],
    identity_headers: &[&HeaderName],
    session_cookies: &[String],
    credential_params: &[String],
) -> Result<(), ChannelReject> {
    check_nominations(headers, identity_headers)?;
    let mut identity_present = false;
    for name in identity_headers {
        let want = header_form(name.as_str());
        let copies: usize = headers
            .keys()
            .filter(|k| header_form(k.as_str()) == want)
            .map(|k| headers.get_all(k).iter().count())
            .sum();
        if copies > 1 {
            return Err(ChannelReject::IdentityHeaderSpellings(name.to_string()));
        }
        identity_present |= copies == 1;
    }
    let in_query: Vec<&String> = query_keys
        .iter()
        .filter(|k| credential_params.iter().any(|c| key_form(c) == key_form(k)))
        .collect();
    let Some(first) = in_query.first() else {
        return Ok(());
    };
    let other = in_query.len() > 1
        || identity_present
        || headers.contains_key(AUTHORIZATION)
        || request::has_session_cookie(headers, session_cookies);
    if other {
        return Err(ChannelReject::QueryCredential((*first).clone()));
    }
    Ok(())
}

/// `Connection` must not name a header the guard reads.
fn check_nominations(
    headers: &HeaderMap,
    identity_headers: &[&HeaderName],
) -> Result<(), ChannelReject> {
    let read: Vec<String> = [AUTHORIZATION, COOKIE, HOST, CONTENT_TYPE]
        .iter()
        .chain(identity_headers.iter().copied())
        .map(|n| header_form(n.as_str()))
        .collect();
    connection_tokens(headers)
        .map(|token| header_form(String::from_utf8_lossy(token).trim()))
        .find(|token| read.contains(token))
        .map_or(Ok(()), |token| Err(ChannelReject::NominatedHeader(token)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    fn run(pairs: &[(&str, &str)], query: &[&str]) -> Result<(), ChannelReject> {
        let id = HeaderName::from_static("x-user-id");
        let tenant = HeaderName::from_static("x-team");
        let query: Vec<String> = query.iter().map(|s| s.to_string()).collect();
        let params: Vec<String> = DEFAULT_CREDENTIAL_PARAMS
            .iter()
            .map(|s| s.to_string())
            .collect();
        check(
            &headers(pairs),
            &query,
            &[&id, &tenant],
            &["sid".to_string()],
            &params,
        )
    }

    #[test]
    fn headers_the_guard_reads_may_not_be_nominated() {
        for nominated in [
            "Authorization",
            "cookie",
            "X-User-Id",
            "x_user_id",
            "X-Team",
            "close, Host",
            "content-type",
        ] {
            assert!(
                matches!(
                    run(&[("connection", nominated)], &[]),
                    Err(ChannelReject::NominatedHeader(_))
                ),
                "{nominated}"
            );
        }
        assert_eq!(run(&[("connection", "keep-alive, x-trace")], &[]), Ok(()));
    }

    #[test]
    fn refusals_name_what_was_refused() {
        for (reject, named) in [
            (ChannelReject::NominatedHeader("cookie".into()), "cookie"),
            (
                ChannelReject::QueryCredential("access_token".into()),
                "access_token",
            ),
            (
                ChannelReject::IdentityHeaderSpellings("x-user-id".into()),
                "x-user-id",
            ),
        ] {
            assert!(reject.to_string().contains(named), "{reject}");
        }
    }

    #[test]
    fn identity_headers_come_once_in_one_spelling() {
        assert_eq!(run(&[("x-user-id", "2")], &[]), Ok(()));
        assert_eq!(
            run(
                &[("x-user-id", "2"), ("accept", "*/*"), ("x-trace", "1")],
                &[]
            ),
            Ok(())
        );
        for pairs in [
            vec![("x-user-id", "2"), ("x_user_id", "3")],
            vec![("x-user-id", "2"), ("x-user-id", "2")],
            vec![("x-team", "a"), ("X_TEAM", "b")],
        ] {
            assert!(
                matches!(
                    run(&pairs, &[]),
                    Err(ChannelReject::IdentityHeaderSpellings(_))
                ),
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn a_query_credential_must_be_the_only_credential() {
        assert_eq!(run(&[], &["access_token"]), Ok(()));
        assert_eq!(run(&[("authorization", "Bearer x")], &["page"]), Ok(()));
        assert_eq!(run(&[("accept", "*/*")], &["token"]), Ok(()));
        for (pairs, query) in [
            (vec![("authorization", "Bearer x")], vec!["access_token"]),
            (vec![("authorization", "Bearer x")], vec!["Access-Token"]),
            (vec![("cookie", "sid=1")], vec!["token"]),
            (vec![("x-user-id", "2")], vec!["jwt"]),
            (vec![], vec!["token", "api_key"]),
        ] {
            assert!(
                matches!(run(&pairs, &query), Err(ChannelReject::QueryCredential(_))),
                "{pairs:?} {query:?}"
            );
        }
    }
}
