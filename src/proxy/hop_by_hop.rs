//! Hop-by-hop headers (RFC 9110 §7.6.1) of proxied responses and requests: they describe one
//! connection, so they are dropped before the message goes on; pingora frames each connection
//! and writes its own `Connection`. No pingora types.

use super::http_io;
use crate::headers::connection_tokens;
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName};

/// The headers to drop from a response with `status` and `headers`: the standard hop-by-hop
/// ones and those its `Connection` header names. Kept: `Connection` (pingora replaces it),
/// the framing (`Content-Length`, `Transfer-Encoding`, which pingora re-frames), and `Upgrade`
/// on a `101`, which names the protocol switched to.
pub fn response_drops(status: u16, headers: &HeaderMap) -> Vec<HeaderName> {
    let kept = |name: &HeaderName| {
        *name == CONNECTION
            || *name == CONTENT_LENGTH
            || *name == TRANSFER_ENCODING
            || (*name == UPGRADE && status == 101)
    };
    let mut drops: Vec<HeaderName> = headers
        .keys()
        .filter(|n| !http_io::end_to_end(n))
        .cloned()
        .chain(nominated(headers))
        .filter(|n| !kept(n))
        .collect();
    drops.dedup();
    drops
}

/// The headers a request's `Connection` header nominates, which a proxy drops before forwarding
/// (RFC 9110 §7.6.1): pingora does so on the path it streams, and the guard's buffered path drops
/// these, so the backend sees the same headers either way. Kept: `Upgrade` (a WebSocket handshake
/// names it), `Connection` and the framing.
pub fn request_drops(headers: &HeaderMap) -> Vec<HeaderName> {
    let mut drops: Vec<HeaderName> = nominated(headers)
        .filter(|n| ![CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING, UPGRADE].contains(n))
        .collect();
    drops.dedup();
    drops
}

/// The header names listed in the `Connection` headers.
fn nominated(headers: &HeaderMap) -> impl Iterator<Item = HeaderName> + '_ {
    connection_tokens(headers).filter_map(|token| HeaderName::from_bytes(token).ok())
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

    fn names(drops: Vec<HeaderName>) -> Vec<String> {
        let mut names: Vec<String> = drops.into_iter().map(|n| n.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn standard_and_nominated_headers_are_dropped() {
        let h = headers(&[
            ("keep-alive", "timeout=5"),
            ("connection", "close, X-Hop"),
            ("connection", "x-other"),
            ("x-hop", "1"),
            ("x-parts", "kept"),
            ("proxy-connection", "keep-alive"),
            ("upgrade", "h2c"),
            ("te", "trailers"),
            ("trailer", "x-sum"),
            ("content-length", "2"),
        ]);
        assert_eq!(
            names(response_drops(200, &h)),
            [
                "close",
                "keep-alive",
                "proxy-connection",
                "te",
                "trailer",
                "upgrade",
                "x-hop",
                "x-other"
            ]
        );
    }

    #[test]
    fn a_request_drops_what_its_connection_header_names_but_upgrade() {
        let h = headers(&[
            ("connection", "Upgrade, X-Hop, keep-alive"),
            ("connection", "Content-Length"),
            ("upgrade", "websocket"),
            ("x-hop", "1"),
        ]);
        assert_eq!(names(request_drops(&h)), ["keep-alive", "x-hop"]);
    }

    #[test]
    fn framing_and_the_upgrade_of_a_101_stay() {
        let h = headers(&[
            ("connection", "Upgrade, Content-Length, Transfer-Encoding"),
            ("upgrade", "websocket"),
            ("transfer-encoding", "chunked"),
        ]);
        assert!(response_drops(101, &h).is_empty());
        assert_eq!(names(response_drops(200, &h)), ["upgrade"]);
    }
}
