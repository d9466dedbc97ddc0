//! Pure helpers over HTTP header fields shared by the guard and the proxy.

use http::header::CONNECTION;
use http::HeaderMap;

/// The tokens of every `Connection` header field (RFC 9110 §7.6.1), trimmed of blanks and in
/// their raw bytes: the caller decides how strictly a token must be a header name.
pub fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connection_field_is_split_and_trimmed() {
        let mut h = HeaderMap::new();
        h.append(CONNECTION, "close, X-Hop ,".parse().unwrap());
        h.append(CONNECTION, " upgrade".parse().unwrap());
        let tokens: Vec<&[u8]> = connection_tokens(&h).collect();
        assert_eq!(tokens, [&b"close"[..], b"X-Hop", b"", b"upgrade"]);
    }
}
