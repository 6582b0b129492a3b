//! WebSocket peers for the `ws://` tests of both runtimes (SPEC.md §3.10): raw HTTP upgrade
//! requests (a missing subprotocol, a wrong path, a slow request), a blocking WebSocket client
//! that sends what a tandem peer never would (text, oversize messages), fake servers whose
//! upgrade or first message is wrong, and a tiny HTTP server that shares its port with a tandem
//! server by path.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::server::{Request, Response};
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

/// Sends an upgrade request for `path` at `addr` (offering `Sec-WebSocket-Protocol: tandem/1`
/// when `subprotocol`) and returns the server's answer as text (status line, headers, body),
/// read until the server closes or 5 s pass.
pub fn upgrade_answer(addr: SocketAddr, path: &str, subprotocol: bool) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    let proto = if subprotocol { "Sec-WebSocket-Protocol: tandem/1\r\n" } else { "" };
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{proto}\r\n"
    );
    s.write_all(req.as_bytes()).expect("write the request");
    read_for(&mut s, Duration::from_secs(5))
}

/// Reads what `s` receives for at most `limit` (until it ends).
pub fn read_for(s: &mut TcpStream, limit: Duration) -> String {
    let end = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        s.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                if out.ends_with(b"\r\n\r\n") && !out.starts_with(b"HTTP/1.1 4") {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends the start of an upgrade request one byte every 100 ms and returns how long the
/// server took to close the connection (`None`: it was still open after `limit`).
pub fn slowloris(addr: SocketAddr, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    let req = b"GET /rpc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Slow: ";
    s.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    let mut buf = [0u8; 256];
    let mut i = 0;
    while start.elapsed() < limit {
        let byte = req.get(i).copied().unwrap_or(b'a');
        i += 1;
        if s.write_all(&[byte]).is_err() {
            return Some(start.elapsed());
        }
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

/// A blocking WebSocket client of `ws://addr/path` offering `tandem/1`.
pub fn client(addr: SocketAddr, path: &str) -> WebSocket<TcpStream> {
    let mut req = format!("ws://{addr}{path}").into_client_request().expect("request");
    req.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("tandem/1"));
    let s = TcpStream::connect(addr).expect("connect");
    let (ws, _) = tungstenite::client(req, s).expect("upgrade");
    ws
}

/// Reads messages until the connection ends (true) or `limit` passes (false).
pub fn ends_within(ws: &mut WebSocket<TcpStream>, limit: Duration) -> bool {
    ws.get_mut().set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    let end = Instant::now() + limit;
    while Instant::now() < end {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Reads until a binary message arrives (its payload) or the connection ends (`None`).
pub fn next_binary(ws: &mut WebSocket<TcpStream>, limit: Duration) -> Option<Vec<u8>> {
    ws.get_mut().set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    let end = Instant::now() + limit;
    while Instant::now() < end {
        match ws.read() {
            Ok(Message::Binary(b)) => return Some(b.to_vec()),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return None,
        }
    }
    None
}

/// A server on a free loopback port that answers one upgrade (selecting `tandem/1` when
/// `subprotocol`) and then sends `first`; returns its address.
pub fn fake_server(subprotocol: bool, first: Option<Message>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        let Ok((s, _)) = l.accept() else { return };
        // tungstenite's `Callback` returns its `ErrorResponse` by value: not ours to box.
        #[allow(clippy::result_large_err)]
        let cb = move |_: &Request, mut r: Response| {
            if subprotocol {
                r.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("tandem/1"));
            }
            Ok(r)
        };
        let Ok(mut ws) = tungstenite::accept_hdr(s, cb) else { return };
        if let Some(m) = first {
            let _ = ws.send(m);
        }
        let _ = ws.get_mut().set_read_timeout(Some(Duration::from_secs(5)));
        while ws.read().is_ok() {}
    });
    addr
}

/// A tiny HTTP/1.1 server on a free loopback port that answers `GET /health` with `ok` and
/// hands every request for `path` to `upgrade` (with the bytes of the request head it read);
/// anything else gets 404. One thread, one connection at a time; returns its address.
pub fn http_server<F>(path: &'static str, upgrade: F) -> SocketAddr
where
    F: Fn(TcpStream, &[u8]) + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            // Byte by byte up to the end of the head: nothing of what follows is taken.
            while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                match s.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let target = head.split(|b| *b == b' ').nth(1).unwrap_or_default().to_vec();
            if target == path.as_bytes() {
                let _ = s.set_read_timeout(None);
                upgrade(s, &head);
            } else if target == b"/health" {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            } else {
                let _ =
                    s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        }
    });
    addr
}

/// `GET path` on `addr`, the whole answer as text.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .expect("write");
    let mut out = String::new();
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.read_to_string(&mut out);
    out
}
