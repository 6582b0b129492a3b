//! A TCP proxy on loopback that forwards every connection to a target and can cut them all at
//! once: a transport loss that the tandem session survives (resumption tests, over any byte
//! stream, TLS included, since the proxy forwards bytes it does not read).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// A running proxy (its thread ends with the process).
pub struct TcpProxy {
    addr: SocketAddr,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl TcpProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards to `target`.
    pub fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let kept = conns.clone();
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                let Ok(inbound) = inbound else { continue };
                let Ok(outbound) = TcpStream::connect(target) else { continue };
                let (Ok(i2), Ok(o2)) = (inbound.try_clone(), outbound.try_clone()) else { continue };
                {
                    let mut c = kept.lock().unwrap_or_else(|e| e.into_inner());
                    c.retain(|s: &TcpStream| s.peer_addr().is_ok());
                    c.extend(inbound.try_clone().ok());
                    c.extend(outbound.try_clone().ok());
                }
                std::thread::spawn(move || pipe(inbound, outbound));
                std::thread::spawn(move || pipe(o2, i2));
            }
        });
        TcpProxy { addr, conns }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection it forwards (both sides see the transport end).
    pub fn cut(&self) {
        for s in self.conns.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
