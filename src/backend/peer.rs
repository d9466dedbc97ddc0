//! Where an upstream is right now: its address (a host name is re-resolved in the background
//! once its last answer is [`RESOLVE_TTL`] old, and the last good address is kept while
//! resolution fails) and how to reach it (plain HTTP, or TLS through [`UpstreamTls`]), as a
//! pingora [`HttpPeer`].

use super::upstream_tls::UpstreamTls;
use pingora::upstreams::peer::HttpPeer;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a resolved address is used before the host name is looked up again.
pub const RESOLVE_TTL: Duration = Duration::from_secs(30);

/// How long one lookup may take before the last good address is used.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// One upstream: a fixed address, or a host name and port re-resolved as DNS changes.
pub struct UpstreamPeer {
    tls: Option<UpstreamTls>,
    state: Arc<Resolution>,
}

/// The cached address of a host name and whether a lookup is running.
struct Resolution {
    name: Option<(String, u16)>,
    cache: Mutex<Cached>,
    resolving: AtomicBool,
}

#[derive(Clone, Copy)]
struct Cached {
    address: SocketAddr,
    at: Instant,
}

impl UpstreamPeer {
    /// An upstream at `address` (resolved when the config was loaded); `name` is the host name
    /// and port to re-resolve, `None` for an IP address.
    pub fn new(address: SocketAddr, name: Option<(String, u16)>, tls: Option<UpstreamTls>) -> Self {
        UpstreamPeer {
            tls,
            state: Arc::new(Resolution {
                name,
                cache: Mutex::new(Cached {
                    address,
                    at: Instant::now(),
                }),
                resolving: AtomicBool::new(false),
            }),
        }
    }

    /// The peer to connect to now (no timeouts set: the caller sets its own).
    pub fn peer(&self) -> HttpPeer {
        let mut peer = HttpPeer::new(self.address(), false, String::new());
        if let Some(tls) = &self.tls {
            tls.apply(&mut peer);
        }
        peer
    }

    /// The address to connect to now. When the host name's last answer is stale, a lookup
    /// starts in the background and the connections after it use its answer; connecting
    /// never waits for DNS.
    pub fn address(&self) -> SocketAddr {
        let cached = self.state.cached();
        let stale = cached.at.elapsed() >= RESOLVE_TTL;
        if self.state.name.is_some() && stale && !self.state.resolving.swap(true, Ordering::AcqRel)
        {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(self.state.clone().refresh());
                }
                Err(_) => self.state.resolving.store(false, Ordering::Release),
            }
        }
        cached.address
    }
}

impl Resolution {
    fn cached(&self) -> Cached {
        match self.cache.lock() {
            Ok(c) => *c,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// Looks the host name up once and stores the answer (or keeps the last good address).
    async fn refresh(self: Arc<Self>) {
        let _done = ResolvingFlag(&self.resolving);
        let Some((host, port)) = &self.name else {
            return;
        };
        let current = self.cached().address;
        let lookup = tokio::net::lookup_host((host.as_str(), *port));
        let found = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
            Ok(Ok(list)) => Ok(list.collect::<Vec<_>>()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {LOOKUP_TIMEOUT:?}")),
        };
        let address = choose(current, found.as_deref().map_err(Clone::clone));
        match &found {
            Ok(list) if !list.is_empty() => {
                if address != current {
                    tracing::info!(host = %host, from = %current, to = %address, "the backend host name moved");
                }
            }
            Ok(_) => {
                tracing::warn!(host = %host, keeping = %address, "the backend host name resolved to nothing; keeping the last good address")
            }
            Err(e) => {
                tracing::warn!(host = %host, error = %e, keeping = %address, "cannot resolve the backend host name; keeping the last good address")
            }
        }
        if let Ok(mut c) = self.cache.lock() {
            *c = Cached {
                address,
                at: Instant::now(),
            };
        }
    }
}

/// Clears the "a lookup is running" flag when the lookup ends, even if it was cancelled.
struct ResolvingFlag<'a>(&'a AtomicBool);

impl Drop for ResolvingFlag<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The address to use after a lookup: the current one while it is still among the answers
/// (pooled connections stay valid), else the first answer; the current one when the lookup
/// failed or found nothing.
fn choose(current: SocketAddr, found: Result<&[SocketAddr], String>) -> SocketAddr {
    match found {
        Ok(list) if list.contains(&current) => current,
        Ok(list) => list.first().copied().unwrap_or(current),
        Err(_) => current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn keeps_the_current_address_while_dns_still_lists_it() {
        let now = addr("10.0.0.1:443");
        let list = [addr("10.0.0.2:443"), now];
        assert_eq!(choose(now, Ok(&list)), now);
    }

    #[test]
    fn moves_when_dns_changes_and_keeps_the_last_good_address_on_failure() {
        let now = addr("10.0.0.1:443");
        assert_eq!(
            choose(now, Ok(&[addr("10.0.0.9:443")])),
            addr("10.0.0.9:443")
        );
        assert_eq!(choose(now, Ok(&[])), now);
        assert_eq!(choose(now, Err("no such host".into())), now);
    }

    fn age(peer: &UpstreamPeer) {
        peer.state.cache.lock().unwrap().at = Instant::now() - RESOLVE_TTL - Duration::from_secs(1);
    }

    async fn settled(peer: &UpstreamPeer) -> SocketAddr {
        for _ in 0..200 {
            if !peer.state.resolving.load(Ordering::Acquire) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        peer.address()
    }

    #[tokio::test]
    async fn re_resolves_a_host_name_once_the_answer_is_stale() {
        let old = addr("10.9.9.9:8080");
        let peer = UpstreamPeer::new(old, Some(("localhost".into(), 8080)), None);
        assert_eq!(peer.address(), old, "a fresh answer is reused");
        assert!(!peer.state.resolving.load(Ordering::Acquire));
        age(&peer);
        assert_eq!(peer.address(), old, "connecting does not wait for DNS");
        assert_eq!(settled(&peer).await, addr("127.0.0.1:8080"));
        let unresolvable = UpstreamPeer::new(old, Some(("no-such-host.invalid".into(), 1)), None);
        age(&unresolvable);
        unresolvable.address();
        assert_eq!(settled(&unresolvable).await, old, "last good address kept");
        let fixed = UpstreamPeer::new(old, None, None);
        age(&fixed);
        assert_eq!(fixed.address(), old);
        assert!(!fixed.state.resolving.load(Ordering::Acquire));
    }

    #[tokio::test]
    async fn plain_and_tls_peers() {
        let fixed = UpstreamPeer::new(addr("127.0.0.1:1"), None, None);
        let p = fixed.peer();
        assert!(!p.is_tls());
        assert_eq!(p.sni, "");
    }
}
