//! A server's listening tasks on the I/O threads: [`start`] hands every accepted transport (or
//! UDP datagram) to the shared hub and every admitted connection to a [`driver`]; everything
//! else is the hub's. (Layer 3 of [`threads`](super): imports `driver`, `io`, `transport`.)

use core::task::{Context, Poll, Waker};
use core::time::Duration;
use std::io;
use std::net::UdpSocket;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tandem_core::Transport as Framing;

use super::driver;
use super::io::{self as iot, Cx, Next, Registered, Source, Task};
use super::transport::{Assoc, Interest, Listener, Socket, SERIAL_MAX_DATAGRAM};
use super::ws::WsTransport;
use super::Dispatch;
use crate::error::{io_error, Error};
use crate::handlers::{HandlerFns, Registry};
use crate::hub::Hub;
use crate::open::{self, TransportInfo};
use crate::serial::{LineHome, SerialPort};
use crate::tls::{TlsServerConfig, TlsSession};

impl Source for Listener {
    fn source_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.fd())
    }
}

/// A server's listening task, as its `Server` reaches it: [`stop`](Self::stop) ends it.
#[derive(Debug)]
pub struct Listening {
    hub: Arc<Hub>,
    /// The listening task's waker, to make it see that the hub stopped.
    waker: Arc<Mutex<Option<Waker>>>,
    /// `ws://` and `wss://`: serves a connection an application accepted
    /// ([`serve_websocket`](Self::serve_websocket)).
    adopt: Option<Adopt>,
}

/// Serves an adopted WebSocket connection (the socket, the bytes read from it).
type AdoptFn = dyn FnMut(std::net::TcpStream, Vec<u8>) -> Result<(), Error> + Send;

/// [`AdoptFn`], shared by the server's handles.
struct Adopt(Mutex<Box<AdoptFn>>);

impl core::fmt::Debug for Adopt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Adopt")
    }
}

impl Listening {
    /// Stops the hub (nothing more is admitted) and the listening task (the listening socket
    /// is closed).
    pub fn stop(&self) {
        self.hub.stop();
        if let Some(w) = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            w.wake();
        }
    }

    /// Serves a WebSocket connection that the application accepted on its own listener (an
    /// HTTP server sharing the port by path): `already_read` are the bytes it read from
    /// `stream` already (the upgrade request, whole or in part; empty if none). The upgrade,
    /// the path check and, on `wss://`, TLS run as for a connection this server accepted.
    /// Fails if the server does not listen on `ws://` or `wss://`.
    pub fn serve_websocket(&self, stream: std::net::TcpStream, already_read: &[u8]) -> Result<(), Error> {
        let Some(adopt) = &self.adopt else {
            return Err(Error::Io {
                context: "cannot serve a WebSocket connection: this server does not listen on ws:// or wss://".into(),
                source: io::Error::new(
                    io::ErrorKind::Unsupported,
                    "bind the server on ws://HOST:PORT/PATH or wss://HOST:PORT/PATH (port 0 if it should only serve adopted connections)",
                ),
            });
        };
        (adopt.0.lock().unwrap_or_else(|e| e.into_inner()))(stream, already_read.to_vec())
    }
}

/// Starts accepting on `listener` (receiving, on UDP) on an I/O thread, for `hub`: every
/// admitted connection is served by `handlers`, with a new TLS session of `tls` on `tls://`,
/// its started handlers going to the [`Dispatch`] `dispatch` makes for it.
pub fn start<F, D, N>(
    listener: Listener,
    hub: Arc<Hub>,
    handlers: Registry<F>,
    tls: Option<TlsServerConfig>,
    dispatch: N,
) -> Listening
where
    F: HandlerFns,
    D: Dispatch<F>,
    N: Fn() -> D + Send + Sync + 'static,
{
    let waker = Arc::new(Mutex::new(None));
    let dispatch = Arc::new(dispatch);
    let adopt = listener.websocket_path().map(|path| {
        let (hub, handlers, dispatch, tls, path) =
            (hub.clone(), handlers.clone(), dispatch.clone(), tls.clone(), path.to_string());
        Adopt(Mutex::new(Box::new(move |stream, read| {
            adopt_websocket(&hub, &handlers, (*dispatch)(), tls.as_ref(), &path, stream, read)
        })))
    });
    let serve = Serve { hub: hub.clone(), handlers, dispatch, waker: waker.clone(), tls };
    match listener {
        Listener::Udp(socket) => iot::spawn(
            Box::new(UdpTask { socket: Arc::new(socket), reg: None, buf: Vec::new(), serve }),
            false,
        ),
        Listener::Serial(tty) => {
            let home = Arc::new(Mutex::new(LineHome { file: Some(tty), waker: None }));
            iot::spawn(Box::new(SerialTask { home, not_before: None, serve }), false)
        }
        listener => iot::spawn(
            Box::new(AcceptTask { listener: Some(listener), reg: None, backoff: None, serve }),
            false,
        ),
    }
    Listening { hub, waker, adopt }
}

/// What the listening tasks need.
struct Serve<F: HandlerFns, N> {
    hub: Arc<Hub>,
    handlers: Registry<F>,
    /// Makes each connection's [`Dispatch`].
    dispatch: Arc<N>,
    waker: Arc<Mutex<Option<Waker>>>,
    /// `tls://`: each accepted connection gets a TLS session of this configuration.
    tls: Option<TlsServerConfig>,
}

impl<F: HandlerFns, D: Dispatch<F>, N: Fn() -> D> Serve<F, N> {
    fn start(&self, conn: open::NewConnection, socket: Socket, tls: Option<Box<TlsSession>>) {
        driver::spawn(conn, socket, tls, None, &self.handlers, (*self.dispatch)());
    }

    /// A `ws://` or `wss://` connection: the upgrade of `path` runs on its driver.
    fn start_websocket(
        &self,
        conn: open::NewConnection,
        socket: Socket,
        tls: Option<Box<TlsSession>>,
        path: &str,
    ) {
        let Socket::Tcp(tcp) = socket else { return };
        let max = driver::max_packet(&conn);
        let t = Box::new(WsTransport::server(tcp, tls, path, Vec::new(), max));
        driver::spawn_conn(conn, t, None, None, &self.handlers, (*self.dispatch)());
    }

    /// Keeps the task's waker for [`Server::stop`]; whether the server has stopped.
    fn stopped(&self, cx: &Cx<'_>) -> bool {
        let mut w = self.waker.lock().unwrap_or_else(|e| e.into_inner());
        if w.is_none() {
            *w = Some(cx.waker.clone());
        }
        self.hub.is_stopped()
    }
}

/// Accepts connections on a TCP or Unix listener.
struct AcceptTask<F: HandlerFns, N> {
    listener: Option<Listener>,
    reg: Option<Registered<Listener>>,
    /// After a failed accept (out of file descriptors, …): not before then.
    backoff: Option<Instant>,
    serve: Serve<F, N>,
}

impl<F, D, N> Task for AcceptTask<F, N>
where
    F: HandlerFns,
    D: Dispatch<F>,
    N: Fn() -> D + Send + Sync + 'static,
{
    fn turn(&mut self, cx: &Cx<'_>) -> Next {
        if self.serve.stopped(cx) {
            return Next::Done;
        }
        if let Some(l) = self.listener.take() {
            match Registered::new(l, cx) {
                Ok(r) => self.reg = Some(r),
                Err(e) => {
                    tracing::error!(error = %e, "cannot wait on the listener: not accepting");
                    return Next::Done;
                }
            }
        }
        let Some(reg) = self.reg.as_mut() else { return Next::Done };
        if cx.fired {
            reg.fired();
        }
        if let Some(t) = self.backoff.filter(|t| Instant::now() < *t) {
            return Next::Wait(Some(t));
        }
        self.backoff = None;
        for _ in 0..64 {
            match reg.get().accept() {
                Ok((socket, label)) => {
                    let websocket = reg.get().websocket_path().is_some();
                    let session = |t: &TlsServerConfig| {
                        if websocket {
                            t.websocket_session()
                        } else {
                            t.session()
                        }
                    };
                    let tls = match self.serve.tls.as_ref().map(session).transpose() {
                        Ok(tls) => tls.map(Box::new),
                        Err(e) => {
                            tracing::error!(remote = %label, error = %e, "cannot start a TLS session: connection dropped");
                            continue;
                        }
                    };
                    if let Some(conn) = open::accept(&self.serve.hub, socket.info(), &label) {
                        match reg.get().websocket_path() {
                            Some(path) => self.serve.start_websocket(conn, socket, tls, path),
                            None => self.serve.start(conn, socket, tls),
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    reg.arm(Interest { read: true, write: false });
                    return Next::Wait(None);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    let t = Instant::now() + Duration::from_millis(50);
                    self.backoff = Some(t);
                    return Next::Wait(Some(t));
                }
            }
        }
        Next::Again
    }
}

/// A WebSocket connection whose TCP socket an application accepted (its own HTTP server on
/// the port): `already_read` are the bytes it read from `stream` (the start of the upgrade
/// request, or nothing). The connection is admitted by `hub` like an accepted one, upgrades
/// on `path` through a TLS session of `tls` (`wss://`), and is served by `handlers`, its
/// started handlers going to `dispatch`. Fails only when the socket cannot be made
/// non-blocking; a refused connection is closed (logged and counted, as on accept).
pub fn adopt_websocket<F: HandlerFns, D: Dispatch<F>>(
    hub: &Arc<Hub>,
    handlers: &Registry<F>,
    dispatch: D,
    tls: Option<&TlsServerConfig>,
    path: &str,
    stream: std::net::TcpStream,
    already_read: Vec<u8>,
) -> Result<(), Error> {
    let ctx = || "cannot serve an adopted WebSocket connection".to_string();
    stream.set_nonblocking(true).map_err(|e| io_error(ctx(), e))?;
    let _ = stream.set_nodelay(true);
    let tls = tls.map(|t| t.websocket_session()).transpose()?.map(Box::new);
    let socket = Socket::Tcp(stream);
    let label = socket.remote_addr_label();
    if let Some(conn) = open::accept(hub, socket.info(), &label) {
        let Socket::Tcp(tcp) = socket else { unreachable!("made above") };
        let max = driver::max_packet(&conn);
        let t = Box::new(WsTransport::server(tcp, tls, path, already_read, max));
        driver::spawn_conn(conn, t, None, None, handlers, dispatch);
    }
    Ok(())
}

impl Source for Arc<UdpSocket> {
    fn source_fd(&self) -> Option<BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        Some(self.as_fd())
    }
}

/// A UDP server: receives every datagram on the one socket and hands it to the hub, which
/// delivers it to its association or admits a new one (a HELLO from a new address).
struct UdpTask<F: HandlerFns, N> {
    socket: Arc<UdpSocket>,
    reg: Option<Registered<Arc<UdpSocket>>>,
    buf: Vec<u8>,
    serve: Serve<F, N>,
}

impl<F, D, N> Task for UdpTask<F, N>
where
    F: HandlerFns,
    D: Dispatch<F>,
    N: Fn() -> D + Send + Sync + 'static,
{
    fn turn(&mut self, cx: &Cx<'_>) -> Next {
        if self.serve.stopped(cx) {
            return Next::Done;
        }
        if self.reg.is_none() {
            // Larger than any datagram we accept, so that oversized ones are seen whole and
            // dropped.
            let size = match self.serve.hub.connection().transport {
                Framing::Datagram { max_datagram } => max_datagram as usize + 1,
                _ => 65536,
            };
            self.buf = vec![0; size];
            match Registered::new(self.socket.clone(), cx) {
                Ok(r) => self.reg = Some(r),
                Err(e) => {
                    tracing::error!(error = %e, "cannot wait on the UDP socket: not serving");
                    return Next::Done;
                }
            }
        }
        let Some(reg) = self.reg.as_mut() else { return Next::Done };
        if cx.fired {
            reg.fired();
        }
        let mut task_cx = Context::from_waker(cx.waker);
        for _ in 0..64 {
            let (from, data) = match self.serve.hub.poll_resubmitted(&mut task_cx) {
                Poll::Ready(d) => d,
                Poll::Pending => match reg.get().recv_from(&mut self.buf) {
                    Ok((n, from)) => (from, self.buf[..n].to_vec()),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        reg.arm(Interest { read: true, write: false });
                        return Next::Wait(None);
                    }
                    Err(e) => {
                        if !crate::unix::transient_udp(&e) {
                            tracing::warn!(error = %e, "UDP receive failed");
                        }
                        continue;
                    }
                },
            };
            if let Some((conn, inbox)) = open::datagram(&self.serve.hub, from, data) {
                let assoc = Assoc { socket: self.socket.clone(), peer: from, inbox, waker: None };
                self.serve.start(conn, Socket::Assoc(assoc), None);
            }
        }
        Next::Again
    }
}

/// Least time between two associations on a serial line: a line that hangs up at once (a pty
/// whose other side is closed) is retried at this pace rather than in a loop.
const SERIAL_RETRY: Duration = Duration::from_secs(1);

/// A server on a serial line (point to point): serves one association at a time on the tty;
/// when it ends (CLOSE, idle timeout, superseded by a new HELLO, hang-up) the tty comes back
/// through its [`LineHome`] and a new association waits for the next peer's HELLO.
struct SerialTask<F: HandlerFns, N> {
    home: Arc<Mutex<LineHome>>,
    /// No new association before then.
    not_before: Option<Instant>,
    serve: Serve<F, N>,
}

impl<F, D, N> Task for SerialTask<F, N>
where
    F: HandlerFns,
    D: Dispatch<F>,
    N: Fn() -> D + Send + Sync + 'static,
{
    fn turn(&mut self, cx: &Cx<'_>) -> Next {
        if self.serve.stopped(cx) {
            return Next::Done;
        }
        let tty = {
            let mut home = self.home.lock().unwrap_or_else(|e| e.into_inner());
            // Before looking, so that a tty coming back after the look wakes this task.
            home.waker = Some(cx.waker.clone());
            if home.file.is_none() {
                return Next::Wait(None);
            }
            if let Some(t) = self.not_before.filter(|t| Instant::now() < *t) {
                return Next::Wait(Some(t));
            }
            home.file.take()
        };
        let Some(tty) = tty else { return Next::Wait(None) };
        self.not_before = Some(Instant::now() + SERIAL_RETRY);
        let port = SerialPort::new(tty, SERIAL_MAX_DATAGRAM, Some(self.home.clone()));
        let info = TransportInfo { remote: None, creds: None, udp: true };
        match open::accept(&self.serve.hub, info, "serial") {
            Some(conn) => self.serve.start(conn, Socket::Serial(port), None),
            // Refused by the endpoint (logged): the tty is back home; tried again later.
            None => drop(port),
        }
        Next::Wait(self.not_before)
    }
}
