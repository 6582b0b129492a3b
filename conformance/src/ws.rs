//! The runner over WebSocket (`ws://host:port/path`, SPEC.md §3.10): a blocking tungstenite
//! client or server on a TCP socket, offering and selecting the `tandem/1` subprotocol; each
//! [`send`] is one binary message (a packet, as on SEQPACKET) and what [`recv`] reads is the
//! payload of the next binary message. tungstenite is the runtimes' WebSocket library too
//! (runtime-common/src/threads/ws.rs says why).

use std::io;
use std::net::TcpStream;
use std::time::Duration;

use tandem_core::addr::Address;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::http::{HeaderValue, StatusCode};
use tungstenite::{Bytes, Message, WebSocket};

/// The subprotocol of SPEC.md §3.10.
const SUBPROTOCOL: &str = "tandem/1";

/// A WebSocket connection of the runner.
pub type Ws = WebSocket<TcpStream>;

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn io_of(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        e => other(e),
    }
}

/// Connects to a `ws://` address and upgrades, offering `tandem/1`.
pub fn connect(addr: &Address) -> io::Result<Ws> {
    let Address::WebSocket { tls: false, host_port, .. } = addr else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{addr}: the runner dials ws:// (not wss://)"),
        ));
    };
    let s = TcpStream::connect(host_port)?;
    s.set_nodelay(true)?;
    let mut req = addr.to_string().into_client_request().map_err(other)?;
    req.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
    let (ws, _) = tungstenite::client(req, s).map_err(|e| other(format!("WebSocket upgrade: {e}")))?;
    Ok(ws)
}

/// Answers the upgrade of an accepted connection for `path`, selecting `tandem/1`.
pub fn accept(s: TcpStream, path: &str) -> io::Result<Ws> {
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let path = path.to_string();
    // tungstenite's `Callback` returns its `ErrorResponse` by value: not ours to box.
    #[allow(clippy::result_large_err)]
    let check = move |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path_and_query().map_or("/", |p| p.as_str()) != path {
            let mut e = ErrorResponse::new(Some(format!("the runner serves {path}")));
            *e.status_mut() = StatusCode::NOT_FOUND;
            return Err(e);
        }
        resp.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
        Ok(resp)
    };
    tungstenite::accept_hdr(s, check).map_err(|e| other(format!("WebSocket upgrade: {e}")))
}

/// Sends `b` as one binary message.
pub fn send(ws: &mut Ws, b: &[u8]) -> io::Result<()> {
    ws.send(Message::Binary(Bytes::copy_from_slice(b))).map_err(io_of)
}

/// Ends the runner's side: the WebSocket Close, then the TCP FIN.
pub fn shutdown_write(ws: &mut Ws) -> io::Result<()> {
    let _ = ws.close(None);
    let _ = ws.flush();
    ws.get_ref().shutdown(std::net::Shutdown::Write)
}

/// Appends the next binary message's payload to `buf` within `timeout`: its length, 0 at the
/// end of the connection (a Close, or TCP's end), a timeout error when none came.
pub fn recv(ws: &mut Ws, timeout: Duration, buf: &mut Vec<u8>) -> io::Result<usize> {
    ws.get_ref().set_read_timeout(Some(timeout))?;
    loop {
        match ws.read() {
            Ok(Message::Binary(b)) => {
                buf.extend_from_slice(&b);
                return Ok(b.len());
            }
            Ok(Message::Text(t)) => {
                return Err(other(format!("a text message ({} bytes): not tandem", t.len())))
            }
            Ok(Message::Close(_)) => return Ok(0),
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => return Ok(0),
            Err(tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            )) => return Ok(0),
            Err(e) => return Err(io_of(e)),
        }
    }
}
