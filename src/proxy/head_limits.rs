//! Request heads too long to parse: pingora refuses a request target over the `http` crate's URI
//! limit, or a head over its own size limit, with a bare `400` before any hook of ours runs. The
//! head reader ([`super::head_deadline`]) sees every head first, so a head too long for SCIM is
//! answered here instead, on SCIM paths, with an RFC 7644 error: `414` for the target, `431` for
//! the head. Other paths keep pingora's answer.

use crate::scim::error::ScimError;
use crate::scim::message::SCIM_CONTENT_TYPE;

/// Longest request target the `http` crate (and so pingora) accepts.
pub const MAX_TARGET: usize = u16::MAX as usize - 1;

/// Longest head read before deciding; longer than a request line with the longest target.
pub const MAX_HEAD: usize = 65 * 1024;

/// Why a head cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TooLong {
    /// The request target is over [`MAX_TARGET`]: `414 URI Too Long`.
    Target,
    /// The head does not end within [`MAX_HEAD`]: `431 Request Header Fields Too Large`.
    Head,
}

impl TooLong {
    /// The SCIM error for it.
    pub fn error(self) -> ScimError {
        match self {
            TooLong::Target => ScimError::new(
                414,
                None,
                format!("the request target is longer than {MAX_TARGET} bytes: send a long filter with POST /.search"),
            ),
            TooLong::Head => ScimError::new(
                431,
                None,
                format!("the request head is larger than {MAX_HEAD} bytes"),
            ),
        }
    }
}

/// What is wrong with `head` (the bytes read so far: a whole head, or over [`MAX_HEAD`] bytes of
/// one), or `None` when it can be parsed.
pub fn too_long(head: &[u8]) -> Option<TooLong> {
    let end = find(head, b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| find(head, b"\n\n").map(|i| i + 2))
        .unwrap_or(head.len());
    let Some(line_end) = find(head, b"\n") else {
        return (head.len() > MAX_HEAD).then_some(TooLong::Target);
    };
    let line = &head[..line_end];
    let target = line.split(|b| *b == b' ').nth(1).unwrap_or_default();
    if target.len() > MAX_TARGET {
        Some(TooLong::Target)
    } else if end > MAX_HEAD {
        Some(TooLong::Head)
    } else {
        None
    }
}

/// The path of the request target as far as it arrived (origin form, or the path of the
/// absolute form), without the query.
pub fn target_path(head: &[u8]) -> Option<&str> {
    let line_end = find(head, b"\n").unwrap_or(head.len());
    let target = head[..line_end].split(|b| *b == b' ').nth(1)?;
    let target = std::str::from_utf8(target)
        .or_else(|e| std::str::from_utf8(&target[..e.valid_up_to()]))
        .ok()?;
    let path = match target.split_once("://") {
        Some((_, rest)) => &rest[rest.find('/')?..],
        None => target,
    };
    Some(path.split(['?', '#']).next().unwrap_or(path))
}

/// The whole HTTP/1.1 answer for `why`: the SCIM error body, and `Connection: close` (the rest of
/// the head was not read).
pub fn answer(why: TooLong) -> Vec<u8> {
    let e = why.error();
    let body = e.to_json().to_string();
    let reason = match why {
        TooLong::Target => "URI Too Long",
        TooLong::Head => "Request Header Fields Too Large",
    };
    format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {SCIM_CONTENT_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        e.status,
        body.len()
    )
    .into_bytes()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(target_len: usize, header_bytes: usize, ended: bool) -> Vec<u8> {
        let mut h = format!(
            "GET /scim/v2/Users?filter={} HTTP/1.1\r\n",
            "a".repeat(target_len)
        );
        h.push_str(&format!("X-Big: {}\r\n", "b".repeat(header_bytes)));
        if ended {
            h.push_str("\r\n");
        }
        h.into_bytes()
    }

    #[test]
    fn heads_within_the_limits_pass() {
        assert_eq!(too_long(&head(10, 10, true)), None);
        assert_eq!(too_long(&head(60_000, 10, true)), None);
        assert_eq!(
            too_long(b"GET / HTTP/1.1\r\nHost: x\r\n"),
            None,
            "not complete yet"
        );
    }

    #[test]
    fn long_targets_and_heads_are_classified() {
        assert_eq!(too_long(&head(MAX_TARGET, 10, true)), Some(TooLong::Target));
        let cut: Vec<u8> = head(1_000_000, 0, false)[..MAX_HEAD + 1].to_vec();
        assert_eq!(
            too_long(&cut),
            Some(TooLong::Target),
            "the line never ended"
        );
        let cut: Vec<u8> = head(10, 1_000_000, false)[..MAX_HEAD + 1].to_vec();
        assert_eq!(too_long(&cut), Some(TooLong::Head));
        assert_eq!(
            too_long(&head(10, MAX_HEAD, true)),
            Some(TooLong::Head),
            "read at once"
        );
    }

    #[test]
    fn target_path_handles_forms_and_cut_targets() {
        assert_eq!(
            target_path(b"GET /scim/v2/Users?x=1 HTTP/1.1\r\n"),
            Some("/scim/v2/Users")
        );
        assert_eq!(
            target_path(b"GET http://h:1/scim/v2 HTTP/1.1\r\n"),
            Some("/scim/v2")
        );
        assert_eq!(
            target_path(b"GET /scim/v2/Users?filter=aaaa"),
            Some("/scim/v2/Users")
        );
        assert_eq!(target_path(b"GET /a\xffb HTTP/1.1\r\n"), Some("/a"));
        assert_eq!(target_path(b"GARBAGE"), None);
    }

    #[test]
    fn answers_are_scim_errors_that_close() {
        let text = String::from_utf8(answer(TooLong::Head)).unwrap();
        assert!(text.starts_with("HTTP/1.1 431 "));
        assert!(text.contains("Content-Type: application/scim+json\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        let body = text.split("\r\n\r\n").nth(1).unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["status"], "431");
        assert!(String::from_utf8(answer(TooLong::Target))
            .unwrap()
            .starts_with("HTTP/1.1 414 "));
    }
}
