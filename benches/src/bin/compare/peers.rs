//! The peer rows (feature `peers`): tarpc (tokio, its serde transport with bincode) and tonic
//! (gRPC over HTTP/2; prost messages and the service written by hand, no protoc).
//!
//! Layout, as for every row: the server runs on its own thread (a current-thread tokio runtime),
//! the client on a current-thread tokio runtime driven by the main thread; one connection.

use crate::{unix_path, Idle, Many, Row, Transport, ITEM, MSG};
use futures::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tonic::codegen::http;

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Runs `f` (which builds the server and returns where it listens) on a current-thread tokio
/// runtime on its own thread, which then keeps serving for the life of the process.
fn server_thread<A: Send + 'static, F>(f: impl FnOnce() -> F + Send + 'static) -> A
where
    F: Future<Output = A>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = current_thread();
        rt.block_on(async move {
            let a = f().await;
            tx.send(a).expect("send addr");
            future::pending::<()>().await;
        });
    });
    rx.recv().expect("server started")
}

/// Where a server listens.
#[derive(Clone, Debug)]
enum Addr {
    Tcp(std::net::SocketAddr),
    Unix(PathBuf),
    /// TCP with TLS (tonic only).
    Tls(std::net::SocketAddr),
}

// ------------------------------------------------------------------ tarpc

#[tarpc::service]
trait Bench {
    /// Answers its argument.
    async fn echo(data: Vec<u8>) -> Vec<u8>;
}

#[derive(Clone)]
struct BenchServer;

impl Bench for BenchServer {
    async fn echo(self, _: tarpc::context::Context, data: Vec<u8>) -> Vec<u8> {
        data
    }
}

fn serve_tarpc<S>(io: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    use tarpc::server::{BaseChannel, Channel};
    let codec = tarpc::tokio_serde::formats::Bincode::default();
    let transport = tarpc::serde_transport::Transport::from((io, codec));
    let channel = BaseChannel::with_defaults(transport);
    tokio::spawn(channel.execute(BenchServer.serve()).for_each(|fut| async move {
        tokio::spawn(fut);
    }));
}

fn tarpc_server(t: Transport) -> Addr {
    server_thread(move || async move {
        match t {
            Transport::Tcp => {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let addr = l.local_addr().expect("addr");
                tokio::spawn(async move {
                    while let Ok((s, _)) = l.accept().await {
                        s.set_nodelay(true).expect("nodelay");
                        serve_tarpc(s);
                    }
                });
                Addr::Tcp(addr)
            }
            Transport::Unix => {
                let p = unix_path("tarpc");
                let l = tokio::net::UnixListener::bind(&p).expect("bind");
                tokio::spawn(async move {
                    while let Ok((s, _)) = l.accept().await {
                        serve_tarpc(s);
                    }
                });
                Addr::Unix(p)
            }
            Transport::Tls => panic!("tarpc has no TLS transport of its own: there is no tarpc/tls row"),
        }
    })
}

async fn tarpc_client(addr: &Addr) -> BenchClient {
    let mut config = tarpc::client::Config::default();
    config.max_in_flight_requests = 1024;
    match addr {
        Addr::Tcp(a) => {
            let s = tokio::net::TcpStream::connect(a).await.expect("connect");
            s.set_nodelay(true).expect("nodelay");
            let transport =
                tarpc::serde_transport::Transport::from((s, tarpc::tokio_serde::formats::Bincode::default()));
            BenchClient::new(config, transport).spawn()
        }
        Addr::Unix(p) => {
            let s = tokio::net::UnixStream::connect(p).await.expect("connect");
            let transport =
                tarpc::serde_transport::Transport::from((s, tarpc::tokio_serde::formats::Bincode::default()));
            BenchClient::new(config, transport).spawn()
        }
        Addr::Tls(_) => panic!("tarpc has no TLS transport of its own: there is no tarpc/tls row"),
    }
}

fn long_context() -> tarpc::context::Context {
    let mut cx = tarpc::context::current();
    cx.deadline = Instant::now() + Duration::from_secs(60);
    cx
}

/// tarpc: no streams.
pub struct TarpcRow {
    rt: Runtime,
    client: BenchClient,
    msg: Vec<u8>,
}

impl TarpcRow {
    /// Server thread, client, connected.
    pub fn new(t: Transport) -> TarpcRow {
        let addr = tarpc_server(t);
        let rt = current_thread();
        let client = rt.block_on(tarpc_client(&addr));
        TarpcRow { rt, client, msg: vec![7; MSG] }
    }
}

impl Row for TarpcRow {
    fn call(&mut self) {
        let back = self.rt.block_on(self.client.echo(long_context(), self.msg.clone())).expect("call");
        debug_assert_eq!(back.len(), MSG);
    }

    fn pipelined(&mut self, depth: usize, time: Duration) -> (u64, Duration) {
        let n = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        self.rt.block_on(async {
            let tasks: Vec<_> = (0..depth)
                .map(|_| {
                    let (c, msg, n) = (self.client.clone(), self.msg.clone(), Arc::clone(&n));
                    tokio::spawn(async move {
                        while start.elapsed() < time {
                            c.echo(long_context(), msg.clone()).await.expect("call");
                            n.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("task");
            }
        });
        (n.load(Ordering::Relaxed), start.elapsed())
    }

    fn stream(&mut self, _items: usize) -> Option<Duration> {
        None
    }
}

/// Idle tarpc connections.
pub struct TarpcIdle {
    addr: Addr,
    rt: Runtime,
    clients: Vec<BenchClient>,
}

impl TarpcIdle {
    /// The server.
    pub fn new(t: Transport) -> TarpcIdle {
        TarpcIdle { addr: tarpc_server(t), rt: current_thread(), clients: Vec::new() }
    }
}

impl Idle for TarpcIdle {
    fn open(&mut self, n: usize) {
        let msg = vec![7u8; MSG];
        self.rt.block_on(async {
            for _ in 0..n {
                let c = tarpc_client(&self.addr).await;
                // One call, so that the server end is set up too.
                c.echo(long_context(), msg.clone()).await.expect("call");
                self.clients.push(c);
            }
        });
    }
}

// ------------------------------------------------------------------ tonic

/// The gRPC message of both methods: `message Blob { bytes data = 1; }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Blob {
    /// The payload.
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
}

mod codec {
    use super::Blob;
    use prost::Message;
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
    use tonic::Status;

    /// Prost encoding of [`Blob`] both ways.
    #[derive(Clone, Copy, Default)]
    pub struct BlobCodec;
    #[derive(Clone, Copy, Default)]
    pub struct BlobEnc;
    #[derive(Clone, Copy, Default)]
    pub struct BlobDec;

    impl Codec for BlobCodec {
        type Encode = Blob;
        type Decode = Blob;
        type Encoder = BlobEnc;
        type Decoder = BlobDec;
        fn encoder(&mut self) -> BlobEnc {
            BlobEnc
        }
        fn decoder(&mut self) -> BlobDec {
            BlobDec
        }
    }
    impl Encoder for BlobEnc {
        type Item = Blob;
        type Error = Status;
        fn encode(&mut self, item: Blob, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
            item.encode(buf).map_err(|e| Status::internal(e.to_string()))
        }
    }
    impl Decoder for BlobDec {
        type Item = Blob;
        type Error = Status;
        fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Blob>, Status> {
            Blob::decode(buf).map(Some).map_err(|e| Status::internal(e.to_string()))
        }
    }
}
use codec::BlobCodec;

const ECHO_PATH: &str = "/bench.Bench/Echo";
const SINK_PATH: &str = "/bench.Bench/Sink";

/// The hand-written service (what tonic-build would generate): `Echo` (unary) and `Sink`
/// (client streaming: consumes every item, answers an empty blob).
#[derive(Clone, Copy, Default)]
struct BenchSvc;

impl tonic::server::NamedService for BenchSvc {
    const NAME: &'static str = "bench.Bench";
}

struct EchoUnary;
impl tonic::server::UnaryService<Blob> for EchoUnary {
    type Response = Blob;
    type Future = tonic::codegen::BoxFuture<tonic::Response<Blob>, tonic::Status>;
    fn call(&mut self, req: tonic::Request<Blob>) -> Self::Future {
        Box::pin(async move { Ok(tonic::Response::new(req.into_inner())) })
    }
}

struct SinkStream;
impl tonic::server::ClientStreamingService<Blob> for SinkStream {
    type Response = Blob;
    type Future = tonic::codegen::BoxFuture<tonic::Response<Blob>, tonic::Status>;
    fn call(&mut self, req: tonic::Request<tonic::Streaming<Blob>>) -> Self::Future {
        Box::pin(async move {
            let mut s = req.into_inner();
            while s.message().await?.is_some() {}
            Ok(tonic::Response::new(Blob::default()))
        })
    }
}

impl<B> tower::Service<http::Request<B>> for BenchSvc
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        match req.uri().path() {
            ECHO_PATH => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(BlobCodec);
                Ok(grpc.unary(EchoUnary, req).await)
            }),
            SINK_PATH => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(BlobCodec);
                Ok(grpc.client_streaming(SinkStream, req).await)
            }),
            _ => Box::pin(async move { Ok(tonic::Status::unimplemented("no such method").into_http()) }),
        }
    }
}

fn tonic_server(t: Transport) -> Addr {
    server_thread(move || async move {
        let mut builder = tonic::transport::Server::builder();
        if t == Transport::Tls {
            let p = crate::tls::pki();
            let identity = tonic::transport::Identity::from_pem(&p.cert_pem, &p.key_pem);
            builder =
                builder.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity)).expect("tls");
        }
        let router = builder.add_service(BenchSvc);
        match t {
            Transport::Tcp | Transport::Tls => {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let addr = l.local_addr().expect("addr");
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(l).map(|s| {
                    if let Ok(s) = &s {
                        s.set_nodelay(true).expect("nodelay");
                    }
                    s
                });
                tokio::spawn(router.serve_with_incoming(incoming));
                if t == Transport::Tls {
                    Addr::Tls(addr)
                } else {
                    Addr::Tcp(addr)
                }
            }
            Transport::Unix => {
                let p = unix_path("tonic");
                let l = tokio::net::UnixListener::bind(&p).expect("bind");
                let incoming = tokio_stream::wrappers::UnixListenerStream::new(l);
                tokio::spawn(router.serve_with_incoming(incoming));
                Addr::Unix(p)
            }
        }
    })
}

type Grpc = tonic::client::Grpc<tonic::transport::Channel>;

async fn tonic_client(addr: &Addr) -> Grpc {
    let channel = match addr {
        Addr::Tcp(a) => tonic::transport::Endpoint::from_shared(format!("http://{a}"))
            .expect("endpoint")
            .tcp_nodelay(true)
            .connect()
            .await
            .expect("connect"),
        Addr::Tls(a) => {
            let ca = tonic::transport::Certificate::from_pem(&crate::tls::pki().ca_pem);
            let tls = tonic::transport::ClientTlsConfig::new().ca_certificate(ca).domain_name("localhost");
            tonic::transport::Endpoint::from_shared(format!("https://{a}"))
                .expect("endpoint")
                .tls_config(tls)
                .expect("tls")
                .tcp_nodelay(true)
                .connect()
                .await
                .expect("connect")
        }
        Addr::Unix(p) => {
            let p = p.clone();
            tonic::transport::Endpoint::from_static("http://localhost")
                .connect_with_connector(tower::service_fn(move |_: http::Uri| {
                    let p = p.clone();
                    async move {
                        let s = tokio::net::UnixStream::connect(p).await?;
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                    }
                }))
                .await
                .expect("connect")
        }
    };
    tonic::client::Grpc::new(channel)
}

async fn tonic_echo(g: &mut Grpc, data: Vec<u8>) -> Vec<u8> {
    g.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::from_static(ECHO_PATH);
    g.unary(tonic::Request::new(Blob { data }), path, BlobCodec).await.expect("call").into_inner().data
}

/// tonic: unary echo and a client-streaming sink.
pub struct TonicRow {
    rt: Runtime,
    grpc: Grpc,
    msg: Vec<u8>,
    item: Vec<u8>,
}

impl TonicRow {
    /// Server thread, client, connected.
    pub fn new(t: Transport) -> TonicRow {
        let addr = tonic_server(t);
        let rt = current_thread();
        let grpc = rt.block_on(tonic_client(&addr));
        TonicRow { rt, grpc, msg: vec![7; MSG], item: vec![9; ITEM] }
    }
}

impl Row for TonicRow {
    fn call(&mut self) {
        let back = self.rt.block_on(tonic_echo(&mut self.grpc, self.msg.clone()));
        debug_assert_eq!(back.len(), MSG);
    }

    fn pipelined(&mut self, depth: usize, time: Duration) -> (u64, Duration) {
        let n = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        self.rt.block_on(async {
            let tasks: Vec<_> = (0..depth)
                .map(|_| {
                    let (mut g, msg, n) = (self.grpc.clone(), self.msg.clone(), Arc::clone(&n));
                    tokio::spawn(async move {
                        while start.elapsed() < time {
                            tonic_echo(&mut g, msg.clone()).await;
                            n.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("task");
            }
        });
        (n.load(Ordering::Relaxed), start.elapsed())
    }

    fn stream(&mut self, items: usize) -> Option<Duration> {
        let start = Instant::now();
        let item = self.item.clone();
        let mut g = self.grpc.clone();
        self.rt.block_on(async move {
            g.ready().await.expect("ready");
            let path = http::uri::PathAndQuery::from_static(SINK_PATH);
            let s = futures::stream::iter((0..items).map(move |_| Blob { data: item.clone() }));
            g.client_streaming(tonic::Request::new(s), path, BlobCodec).await.expect("stream");
        });
        Some(start.elapsed())
    }
}

/// Idle tonic connections (one channel, so one HTTP/2 connection, each).
pub struct TonicIdle {
    addr: Addr,
    rt: Runtime,
    clients: Vec<Grpc>,
}

impl TonicIdle {
    /// The server.
    pub fn new(t: Transport) -> TonicIdle {
        TonicIdle { addr: tonic_server(t), rt: current_thread(), clients: Vec::new() }
    }
}

impl Idle for TonicIdle {
    fn open(&mut self, n: usize) {
        let msg = vec![7u8; MSG];
        self.rt.block_on(async {
            for _ in 0..n {
                let mut g = tonic_client(&self.addr).await;
                tonic_echo(&mut g, msg.clone()).await;
                self.clients.push(g);
            }
        });
    }
}

// ------------------------------------------------------------------ many connections

/// Keeps one `call` in flight per client (a task each on `rt`; `call` hands the client back) for
/// `time`; the latency of every call completed.
fn run_many<C, F, Fut>(rt: &Runtime, clients: &[C], time: Duration, call: F) -> Vec<Duration>
where
    C: Clone + Send + 'static,
    F: Fn(C) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = C> + Send,
{
    let start = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = clients
            .iter()
            .map(|c| {
                let (mut c, call) = (c.clone(), call.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    while start.elapsed() < time {
                        let t = Instant::now();
                        c = call(c).await;
                        lat.push(t.elapsed());
                    }
                    lat
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("task"));
        }
        all
    })
}

/// tarpc with many connections: one client each, a task per client on one current-thread
/// runtime.
pub struct TarpcMany {
    addr: Addr,
    rt: Runtime,
    clients: Vec<BenchClient>,
}

impl TarpcMany {
    /// The server.
    pub fn new(t: Transport) -> TarpcMany {
        TarpcMany { addr: tarpc_server(t), rt: current_thread(), clients: Vec::new() }
    }
}

impl Many for TarpcMany {
    fn open(&mut self, n: usize) {
        self.rt.block_on(async {
            for _ in 0..n {
                self.clients.push(tarpc_client(&self.addr).await);
            }
        });
    }

    fn run(&mut self, time: Duration) -> Vec<Duration> {
        run_many(&self.rt, &self.clients, time, |c| async move {
            c.echo(long_context(), vec![7u8; MSG]).await.expect("call");
            c
        })
    }
}

/// tonic with many connections: one channel (one HTTP/2 connection) each, a task per channel
/// on one current-thread runtime.
pub struct TonicMany {
    addr: Addr,
    rt: Runtime,
    clients: Vec<Grpc>,
}

impl TonicMany {
    /// The server.
    pub fn new(t: Transport) -> TonicMany {
        TonicMany { addr: tonic_server(t), rt: current_thread(), clients: Vec::new() }
    }
}

impl Many for TonicMany {
    fn open(&mut self, n: usize) {
        self.rt.block_on(async {
            for _ in 0..n {
                self.clients.push(tonic_client(&self.addr).await);
            }
        });
    }

    fn run(&mut self, time: Duration) -> Vec<Duration> {
        run_many(&self.rt, &self.clients, time, |mut g| async move {
            tonic_echo(&mut g, vec![7u8; MSG]).await;
            g
        })
    }
}
