//! WebSocket (`ws://host:port/path`, `wss://…`; SPEC.md §3.10), written once for both
//! runtimes: [`WsTransport`] is a [`Transport`] around a non-blocking TCP socket (and, on
//! `wss://`, the connection's [`TlsSession`]) that the I/O threads drive like any other. The
//! HTTP upgrade runs on the I/O thread, non-blocking, inside the transport's reads and writes
//! (as the TLS handshake does): a slow or silent peer costs no thread, and the core's handshake
//! timeout (§5.7), which runs from the moment the connection exists, bounds it.
//!
//! Every binary message carries whole tandem frames (the core runs the connection as a
//! reliable packet transport, §3.7, with `max_datagram` as its packet size); messages larger
//! than that are refused by tungstenite before their payload is buffered, and reported to the
//! core as oversized (LIMIT_EXCEEDED). Pings are answered by tungstenite; a text or an empty
//! message closes the connection with PROTOCOL_ERROR (the transport reports it as a violation),
//! a WebSocket protocol error ends the transport; both say why
//! ([`Error::WebSocket`](crate::Error::WebSocket) on a client's first connect).
//!
//! Why tungstenite: it is the well-kept WebSocket implementation of the Rust ecosystem (RFC
//! 6455 framing, masking, fragmentation, control frames, the HTTP upgrade with bounded header
//! sizes) and its sync API works on any `Read + Write`, returning `WouldBlock` and
//! `MidHandshake` instead of blocking, so it runs on our I/O threads without an async runtime
//! (tokio-tungstenite would pull tokio into tandem-smol). (Layer 1 of [`threads`](super):
//! imports `transport`; outside it `tls`, `state`.)

use core::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::task::Poll;

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::server::{Callback, ErrorResponse, Request, Response, ServerHandshake};
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::http::{HeaderValue, StatusCode};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Error as WsError, Message, WebSocket};

use super::transport::{Interest, Transport};
use crate::state::TransportFailure;
use crate::tls::TlsSession;

/// The WebSocket subprotocol (`Sec-WebSocket-Protocol`) of tandem, version 1.
pub const SUBPROTOCOL: &str = "tandem/1";

/// Messages read per [`WsTransport::read`] that carry no frames (pings, pongs) before it
/// lets the driver turn.
const CONTROL_READS: usize = 16;

/// The raw stream under the WebSocket: the TCP socket (shared with the transport, which keeps
/// its descriptor registered for as long as it lives, even after tungstenite has dropped a
/// failed handshake's stream), TLS on `wss://`, and bytes an application already read.
struct Raw {
    tcp: Arc<TcpStream>,
    tls: Option<Box<TlsSession>>,
    /// Bytes read from the socket before it was handed to us (`serve_websocket`).
    prefix: Vec<u8>,
    /// The upgrade is done: `Interrupted` (TLS records without plaintext) may go up to the
    /// driver, which reads on; during the upgrade tungstenite would take it for a failure.
    open: bool,
    /// The direction the last `WouldBlock` came from (`true`: reading).
    blocked_reading: bool,
    /// TLS output waits for writability (a read produced records to send: a handshake
    /// message, a key update's answer).
    tls_output: bool,
}

fn poll(r: io::Result<usize>) -> Poll<io::Result<usize>> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        r => Poll::Ready(r),
    }
}

fn unpoll<T>(p: Poll<io::Result<T>>) -> io::Result<T> {
    match p {
        Poll::Ready(r) => r,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

impl Raw {
    fn flush_tls(&mut self) -> io::Result<()> {
        let Some(tls) = self.tls.as_mut() else { return Ok(()) };
        let tcp = &*self.tcp;
        let r = unpoll(tls.flush(&mut |b| poll((&*tcp).write(b)))).map(drop);
        self.tls_output = matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        r
    }

    fn note(&mut self, r: io::Result<usize>, reading: bool) -> io::Result<usize> {
        if matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            self.blocked_reading = reading;
        }
        r
    }
}

impl Read for Raw {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.prefix.is_empty() {
            let n = buf.len().min(self.prefix.len());
            buf[..n].copy_from_slice(&self.prefix[..n]);
            self.prefix.drain(..n);
            return Ok(n);
        }
        let tcp = self.tcp.clone();
        let Some(tls) = self.tls.as_mut() else {
            let r = (&*tcp).read(buf);
            return self.note(r, true);
        };
        let r = loop {
            let r = unpoll(tls.read(&mut |b| poll((&*tcp).read(b)), buf));
            match r {
                Err(e) if e.kind() == io::ErrorKind::Interrupted && !self.open => continue,
                r => break r,
            }
        };
        // What the records read call for (handshake messages, alerts) goes out now: the peer
        // may wait for it before it sends anything more.
        let _ = self.flush_tls();
        self.note(r, true)
    }
}

impl Write for Raw {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let tcp = self.tcp.clone();
        let r = match self.tls.as_mut() {
            None => (&*tcp).write(buf),
            Some(tls) => unpoll(tls.write(&mut |b| poll((&*tcp).write(b)), buf)),
        };
        self.note(r, false)
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = self.flush_tls();
        if r.is_err() {
            self.blocked_reading = false;
        }
        r
    }
}

/// The server's check of the upgrade request: the path, and the subprotocol.
struct Check {
    path: Arc<str>,
}

fn refuse(status: StatusCode, why: String) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(why));
    *r.status_mut() = status;
    r
}

impl Callback for Check {
    fn on_request(self, request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
        let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
        if target != &*self.path {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                format!("no tandem endpoint at {target}: this server serves WebSocket on {}\n", self.path),
            ));
        }
        let offered = request
            .headers()
            .get_all("Sec-WebSocket-Protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == SUBPROTOCOL);
        if !offered {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                format!("this is a tandem endpoint: the upgrade request must offer Sec-WebSocket-Protocol: {SUBPROTOCOL}\n"),
            ));
        }
        response.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
        Ok(response)
    }
}

enum State {
    Server(MidHandshake<ServerHandshake<Raw, Check>>),
    Client(MidHandshake<ClientHandshake<Raw>>),
    Open(Box<WebSocket<Raw>>),
    Failed,
}

/// A WebSocket connection as a [`Transport`] (see the module documentation).
pub(crate) struct WsTransport {
    tcp: Arc<TcpStream>,
    state: State,
    /// Why it failed, until the driver takes it.
    failure: Option<TransportFailure>,
    /// Why it failed, for every later call.
    reason: Option<String>,
    /// The peer's certificates (`wss://`), until the driver takes them.
    certs: Option<Vec<Vec<u8>>>,
    /// What the handshake last waited for.
    blocked_reading: bool,
    /// `wss://`.
    tls: bool,
    /// The peer broke the mapping (a text or empty message, a WebSocket protocol error): until
    /// the driver takes it; reading stops for good.
    violation: Option<String>,
    violated: bool,
}

impl fmt::Debug for WsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Server(_) | State::Client(_) => "upgrading",
            State::Open(_) => "open",
            State::Failed => "failed",
        };
        f.debug_struct("WsTransport").field("state", &state).field("reason", &self.reason).finish()
    }
}

/// tungstenite's limits for a connection whose packets are at most `max` bytes: a message or
/// frame larger than that is refused from its header, and nothing queues beyond one message.
fn ws_config(max: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(2 * max + 1024)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

impl WsTransport {
    fn raw(tcp: &Arc<TcpStream>, tls: Option<Box<TlsSession>>, prefix: Vec<u8>) -> Raw {
        Raw { tcp: tcp.clone(), tls, prefix, open: false, blocked_reading: true, tls_output: false }
    }

    /// The server side of an accepted connection: answers the upgrade of `path` (others get
    /// HTTP 404), through `tls` on `wss://`; `prefix`: bytes already read from `tcp`.
    pub(crate) fn server(
        tcp: TcpStream,
        tls: Option<Box<TlsSession>>,
        path: &str,
        prefix: Vec<u8>,
        max_message: usize,
    ) -> Self {
        let tcp = Arc::new(tcp);
        let raw = Self::raw(&tcp, tls, prefix);
        let check = Check { path: path.into() };
        let tls = raw.tls.is_some();
        let mid = ServerHandshake::start(raw, check, Some(ws_config(max_message)));
        WsTransport { tls, ..WsTransport::new(tcp, State::Server(mid)) }
    }

    /// The client side: sends the upgrade request for `url` (`ws://host:port/path`) on `tcp`,
    /// through `tls` on `wss://`.
    pub(crate) fn client(
        tcp: TcpStream,
        tls: Option<Box<TlsSession>>,
        url: &str,
        max_message: usize,
    ) -> Self {
        let tcp = Arc::new(tcp);
        let raw = Self::raw(&tcp, tls, Vec::new());
        let started = url.into_client_request().and_then(|mut request| {
            request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
            ClientHandshake::start(raw, request, Some(ws_config(max_message)))
        });
        match started {
            Ok(mid) => WsTransport::new(tcp, State::Client(mid)),
            Err(e) => {
                let mut t = WsTransport::new(tcp, State::Failed);
                t.fail(format!("cannot make the upgrade request for {url}: {e}"));
                t
            }
        }
    }

    fn new(tcp: Arc<TcpStream>, state: State) -> Self {
        WsTransport {
            tcp,
            state,
            failure: None,
            reason: None,
            certs: None,
            blocked_reading: true,
            tls: false,
            violation: None,
            violated: false,
        }
    }

    fn fail(&mut self, reason: String) -> io::Error {
        self.state = State::Failed;
        tracing::debug!("WebSocket failed: {reason}");
        if self.reason.is_none() {
            self.failure = Some(TransportFailure::WebSocket(reason.clone()));
            self.reason = Some(reason);
        }
        self.error()
    }

    /// The peer broke the mapping: the driver closes the connection with PROTOCOL_ERROR (the
    /// WebSocket still carries that CLOSE); nothing more is read.
    fn violate(&mut self, what: &str) -> io::Error {
        if !self.violated {
            self.violated = true;
            self.violation = Some(what.to_string());
        }
        io::ErrorKind::WouldBlock.into()
    }

    fn fail_tls(&mut self, reason: String) -> io::Error {
        if self.reason.is_none() {
            self.failure = Some(TransportFailure::Tls(reason.clone()));
            self.reason = Some(reason);
        }
        self.state = State::Failed;
        self.error()
    }

    fn error(&self) -> io::Error {
        io::Error::other(self.reason.clone().unwrap_or_else(|| "WebSocket closed".into()))
    }

    /// Runs the upgrade on; `Ok` once the WebSocket is open.
    fn upgrade(&mut self) -> io::Result<&mut WebSocket<Raw>> {
        let state = core::mem::replace(&mut self.state, State::Failed);
        let result = match state {
            State::Open(ws) => {
                self.state = State::Open(ws);
                let State::Open(ws) = &mut self.state else { unreachable!() };
                return Ok(ws);
            }
            State::Failed => return Err(self.error()),
            State::Server(mid) => match mid.handshake() {
                Ok(ws) => Ok(ws),
                Err(HandshakeError::Interrupted(mid)) => {
                    self.blocked_reading = mid.get_ref().get_ref().blocked_reading;
                    self.state = State::Server(mid);
                    Err(None)
                }
                Err(HandshakeError::Failure(e)) => Err(Some((e, false))),
            },
            State::Client(mid) => match mid.handshake() {
                Ok((ws, _response)) => Ok(ws),
                Err(HandshakeError::Interrupted(mid)) => {
                    self.blocked_reading = mid.get_ref().get_ref().blocked_reading;
                    self.state = State::Client(mid);
                    Err(None)
                }
                Err(HandshakeError::Failure(e)) => Err(Some((e, true))),
            },
        };
        match result {
            Ok(mut ws) => {
                ws.get_mut().open = true;
                if let Some(tls) = ws.get_mut().tls.as_mut() {
                    self.certs = tls.handshake_done();
                }
                self.state = State::Open(Box::new(ws));
                let State::Open(ws) = &mut self.state else { unreachable!() };
                Ok(ws)
            }
            Err(None) => Err(io::ErrorKind::WouldBlock.into()),
            Err(Some((e, client))) => Err(self.upgrade_failed(e, client)),
        }
    }

    fn upgrade_failed(&mut self, e: WsError, client: bool) -> io::Error {
        match e {
            // The TLS session's failure (its text says what and what to do).
            WsError::Io(e) if e.kind() == io::ErrorKind::Other && self.reason.is_none() => {
                self.fail_tls(e.to_string())
            }
            WsError::Http(response) if client => {
                let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
                let hint = match response.status() {
                    StatusCode::NOT_FOUND => " (is the path of the address right?)",
                    _ => "",
                };
                self.fail(format!(
                    "the server refused the WebSocket upgrade with HTTP {}{hint}: {}",
                    response.status(),
                    body.trim()
                ))
            }
            WsError::Http(response) => {
                self.fail(format!("upgrade refused with HTTP {}", response.status()))
            }
            WsError::Protocol(tungstenite::error::ProtocolError::SecWebSocketSubProtocolError(_)) if client => {
                self.fail(format!(
                    "the server did not select the WebSocket subprotocol {SUBPROTOCOL}: is it a tandem endpoint?"
                ))
            }
            WsError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof || e.kind() == io::ErrorKind::ConnectionReset => {
                self.fail(format!("the connection closed during the WebSocket upgrade: {e}"))
            }
            WsError::Protocol(tungstenite::error::ProtocolError::HandshakeIncomplete) => {
                self.fail("the connection closed during the WebSocket upgrade".into())
            }
            e if client => self.fail(format!(
                "the WebSocket upgrade failed: {e} (does the server speak WebSocket on this port?)"
            )),
            WsError::Io(e) => self.fail(format!("the WebSocket upgrade failed: {e}")),
            e => {
                // Not an HTTP upgrade at all (a tandem peer dialing tcp://, a stray client): one
                // best-effort answer in HTTP, which a tandem dialer recognises ("the server
                // answered in HTTP"); not under TLS, whose session went with the stream.
                if !self.tls {
                    let body = "this is a tandem WebSocket endpoint: connect with ws://HOST:PORT/PATH\n";
                    let answer = format!(
                        "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = (&*self.tcp).write(answer.as_bytes());
                }
                self.fail(format!("the WebSocket upgrade failed: {e}"))
            }
        }
    }
}

impl Transport for WsTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.violated {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let ws = self.upgrade()?;
        for _ in 0..CONTROL_READS {
            match ws.read() {
                Ok(Message::Binary(data)) if data.is_empty() => {
                    return Err(self.violate("the peer sent an empty WebSocket message (SPEC.md §3.10)"));
                }
                Ok(Message::Binary(data)) if data.len() > buf.len() => return Ok(buf.len() + 1),
                Ok(Message::Binary(data)) => {
                    buf[..data.len()].copy_from_slice(&data);
                    return Ok(data.len());
                }
                Ok(Message::Text(_)) => {
                    return Err(self.violate(
                        "the peer sent a WebSocket text message: tandem carries binary messages only (SPEC.md §3.10)",
                    ));
                }
                Ok(Message::Close(_)) => return Ok(0),
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => return Ok(0),
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(WsError::Io(e)) => return Err(e),
                Err(WsError::Capacity(e)) => {
                    tracing::debug!("WebSocket message refused: {e}");
                    // Oversized, as a packet transport reports it: the core closes the
                    // connection with LIMIT_EXCEEDED.
                    return Ok(buf.len() + 1);
                }
                Err(e) => return Err(self.fail(format!("WebSocket protocol error from the peer: {e}"))),
            }
        }
        Err(io::ErrorKind::Interrupted.into())
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let ws = self.upgrade()?;
        // One message at most waits in tungstenite's buffer: flush it before taking another.
        match ws.flush() {
            Ok(()) => {}
            Err(WsError::Io(e)) => return Err(e),
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {
                return Err(io::ErrorKind::BrokenPipe.into())
            }
            Err(e) => return Err(io::Error::other(e.to_string())),
        }
        match ws.write(Message::Binary(tungstenite::Bytes::copy_from_slice(buf))) {
            // Taken, even if the socket could not take it all yet (`flush` goes on).
            Ok(()) => {}
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(WsError::WriteBufferFull(_)) => return Err(io::ErrorKind::WouldBlock.into()),
            Err(WsError::Io(e)) => return Err(e),
            Err(e) => return Err(io::Error::new(io::ErrorKind::BrokenPipe, e.to_string())),
        }
        let _ = ws.flush();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.state {
            State::Open(ws) => match ws.flush() {
                Ok(()) => Ok(()),
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Err(e),
                // Anything else shows on the next read or write.
                Err(_) => Ok(()),
            },
            // The upgrade's own output waits for writability: `blocked` says so.
            _ => Ok(()),
        }
    }

    fn blocked(&self, reading: bool) -> Interest {
        match &self.state {
            State::Open(ws) => {
                let raw = ws.get_ref();
                Interest { read: reading || raw.blocked_reading, write: !reading || raw.tls_output }
            }
            _ => Interest { read: self.blocked_reading, write: !self.blocked_reading },
        }
    }

    fn shutdown_write(&mut self) {
        if let State::Open(ws) = &mut self.state {
            // The closing handshake (§3.10): our Close, then TLS close_notify, then the TCP FIN.
            let _ = ws.close(None);
            let _ = ws.flush();
            if let Some(tls) = ws.get_mut().tls.as_mut() {
                tls.close();
            }
            let _ = ws.get_mut().flush_tls();
        }
        if let Err(e) = self.tcp.shutdown(Shutdown::Write) {
            tracing::trace!(error = %e, "shutdown(write) failed");
        }
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.tcp.as_fd())
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        self.tcp.peer_addr().ok()
    }

    fn is_udp(&self) -> bool {
        false
    }

    fn take_failure(&mut self) -> Option<TransportFailure> {
        self.failure.take()
    }

    fn take_violation(&mut self) -> Option<String> {
        self.violation.take()
    }

    fn take_peer_certificates(&mut self) -> Option<Vec<Vec<u8>>> {
        self.certs.take()
    }
}
