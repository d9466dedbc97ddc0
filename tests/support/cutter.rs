//! A TCP relay in front of a server (PostgreSQL in the fleet tests) that a test can cut, stall,
//! freeze and heal, to play a database that goes down, hangs or comes back, without touching the
//! server other tests share.

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const OPEN: u8 = 0;
const CUT: u8 = 1;
const STALL: u8 = 2;
const FROZEN: u8 = 3;

/// A relay listening on `addr` and forwarding to its target while open.
pub struct Cutter {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl Cutter {
    /// A relay to `target`, open.
    pub fn start(target: SocketAddr) -> Cutter {
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay bind");
        let addr = listener.local_addr().expect("relay addr");
        let mode = Arc::new(AtomicU8::new(OPEN));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (m, l) = (mode.clone(), live.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                match m.load(Ordering::SeqCst) {
                    // Refused: the connection closes at once, as a stopped server's would.
                    CUT => drop(client),
                    // Hung: the connection is held and never answered.
                    STALL | FROZEN => l.lock().unwrap().push(client),
                    _ => relay(client, target, &l, &m),
                }
            }
        });
        Cutter { addr, mode, live }
    }

    /// Drops every open connection and refuses new ones (a database that went down).
    pub fn cut(&self) {
        self.mode.store(CUT, Ordering::SeqCst);
        self.drop_live();
    }

    /// Drops every open connection; new ones are accepted and never answered (a hung database).
    pub fn stall(&self) {
        self.mode.store(STALL, Ordering::SeqCst);
        self.drop_live();
    }

    /// Keeps every connection open but forwards nothing more either way, and holds new ones
    /// unanswered (a network path that stopped delivering without closing anything).
    pub fn freeze(&self) {
        self.mode.store(FROZEN, Ordering::SeqCst);
    }

    /// Forwards new connections again (the database is back); frozen ones are dropped.
    pub fn heal(&self) {
        self.drop_live();
        self.mode.store(OPEN, Ordering::SeqCst);
    }

    fn drop_live(&self) {
        for s in self.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Pumps bytes both ways between `client` and a new connection to `target`.
fn relay(
    client: TcpStream,
    target: SocketAddr,
    live: &Arc<Mutex<Vec<TcpStream>>>,
    mode: &Arc<AtomicU8>,
) {
    let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(2)) else {
        return;
    };
    {
        let mut l = live.lock().unwrap();
        l.push(client.try_clone().expect("clone"));
        l.push(server.try_clone().expect("clone"));
    }
    let (c2, s2) = (
        client.try_clone().expect("clone"),
        server.try_clone().expect("clone"),
    );
    let (m1, m2) = (mode.clone(), mode.clone());
    std::thread::spawn(move || pump(client, server, &m1));
    std::thread::spawn(move || pump(s2, c2, &m2));
}

fn pump(mut from: TcpStream, mut to: TcpStream, mode: &AtomicU8) {
    let mut buf = [0u8; 16384];
    while let Ok(n) = from.read(&mut buf) {
        while mode.load(Ordering::SeqCst) == FROZEN {
            std::thread::sleep(Duration::from_millis(10));
        }
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
