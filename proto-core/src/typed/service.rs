//! [`service!`](crate::service): a service declared once, for both ends, both runtimes and
//! firmware.

/// Declares a service: its module id and methods of every kind, their types and doc comments.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use postcard_schema::Schema;
///
/// #[derive(Serialize, Deserialize, Schema, Debug, PartialEq)]
/// pub struct SetSpeed { pub vehicle: u32, pub speed: i64 }
/// #[derive(Serialize, Deserialize, Schema, Debug, PartialEq)]
/// pub enum FleetError { NoSuchVehicle(u32), TooFast { limit: i64 } }
///
/// tandem_core::service! {
///     /// Controls a fleet of vehicles.
///     pub service fleet = 42 {
///         /// Sets a vehicle's speed; answers the speed it had before.
///         unary set_speed(SetSpeed) -> i64 | FleetError = 1;
///         /// A position report, acknowledged.
///         notify report((u32, i64, i64)) = 2;
///         /// Telemetry, best effort.
///         signal telemetry(u64) = 3;
///         /// Positions of one vehicle as it moves.
///         server_stream track(u32) -> (i64, i64) = 4;
///         /// A route, waypoint by waypoint; answers its length.
///         client_stream upload(u32, (i64, i64)) -> u64 = 5;
///         /// Both ways.
///         bidi chat(u32, String) -> String = 6;
///     }
/// }
///
/// fn main() {
///     assert_eq!(fleet::MODULE, 42);
///     assert_eq!(fleet::set_speed.path(), "fleet.set_speed");
///     assert!(fleet::set_speed.key().is_some());
///     assert_eq!(fleet::DEF.methods.len(), 6);
/// }
/// ```
///
/// It generates a module (`fleet` above) holding, with `use super::*` so the types of the
/// declaration resolve as they do where it is written (declare the service at module level,
/// next to its types, not inside a function body):
///
/// * `MODULE`, `NAME`, and one constant per method (`fleet::set_speed`: a
///   [`Unary`](crate::typed::Unary), [`Notification`](crate::typed::Notification) or
///   [`Streaming`](crate::typed::Streaming)) carrying its ids, its path (`"fleet.set_speed"`)
///   and its schema key, computed at compile time (SPEC.md §7.10.3). The types must implement
///   serde's traits and postcard-schema's `Schema` (`#[derive(Schema)]`).
/// * `DEF`, the [`ServiceDef`](crate::typed::ServiceDef): what introspection serves and
///   registries check.
/// * `Server<R>`, the async handler trait (one method per method of the service: implementing
///   it without one of them does not compile), `BlockingServer<R>` its blocking twin, and
///   `CoreServer`, for [`Dispatcher`](crate::typed::Dispatcher) with the core alone (unary
///   methods, notifications and server streams; client streams and bidirectional streams are
///   refused UNIMPLEMENTED there); `Serve<S>` wraps an implementation for registration
///   (tandem-smol: `Handlers::new().serve(fleet::Serve(MyFleet))`).
/// * `Client<P>` (async) and `BlockingClient<P>`: one method per method of the service, over a
///   runtime's peer handle (tandem-smol: `fleet::Client::new(peer.clone())`).
///
/// Method forms (`| E` declares a typed application error, unary methods only):
///
/// ```text
/// unary name(Req) -> Resp [| E] = id;
/// notify name(T) = id;                  // reliable: acknowledged with a status
/// signal name(T) = id;                  // unreliable
/// server_stream name(Init) -> Item = id;
/// client_stream name(Init, Item) -> Resp = id;
/// bidi name(Init, Up) -> Down = id;
/// ```
///
/// Two methods with the same id do not compile (the error names both); two services on the same
/// module are refused when they are registered together.
#[macro_export]
macro_rules! service {
    (
        $(#[doc = $sdoc:expr])*
        $vis:vis service $svc:ident = $module:tt {
            $(
                $(#[doc = $mdoc:expr])*
                $kind:ident $m:ident ( $($arg:ty),+ ) $(-> $ret:ty)? $(| $err:ty)? = $id:tt ;
            )*
        }
    ) => {
        $(#[doc = $sdoc])*
        #[allow(non_upper_case_globals, dead_code, unused_imports, clippy::module_name_repetitions)]
        $vis mod $svc {
            use super::*;
            #[allow(unused_imports)]
            use $crate::typed::rt::{AsyncCaller, AsyncRuntime, BlockingCaller, BlockingRuntime};

            /// The service's name, the first part of its methods' paths.
            pub const NAME: &str = stringify!($svc);
            /// The service's module id.
            pub const MODULE: u32 = $module;

            $(
                $crate::__tandem_method! { @const [$svc] [$(#[doc = $mdoc])*] $kind $m ($($arg),+) ($($ret)?) ($($err)?) = $id }
                const _: () = assert!(
                    DEF.methods_with_id($id) == 1,
                    concat!(
                        "service `", stringify!($svc), "`: method `", stringify!($m), "` has id ", stringify!($id),
                        ", like another method of the service: every method needs its own id"
                    )
                );
            )*

            /// The declaration as data (SPEC.md Appendix B serves it).
            pub const DEF: $crate::typed::ServiceDef = $crate::typed::ServiceDef {
                name: NAME,
                module: MODULE,
                doc: concat!($($sdoc, "\n",)*),
                methods: &[$(
                    $crate::__tandem_method! { @def [$svc] [$($mdoc)*] $kind $m ($($arg),+) ($($ret)?) ($($err)?) = $id }
                ),*],
            };

            /// The service's handlers for an async runtime (tandem-smol: `R` = `tandem_smol::Async`).
            /// Write each method as an `async fn`.
            pub trait Server<R: AsyncRuntime>: Send + Sync + 'static {
                $(
                    $crate::__tandem_method! { @async_trait [$(#[doc = $mdoc])*] $kind $m ($($arg),+) ($($ret)?) ($($err)?) }
                )*
            }

            /// The service's handlers for a blocking runtime.
            pub trait BlockingServer<R: BlockingRuntime>: Send + Sync + 'static {
                $(
                    $crate::__tandem_method! { @blocking_trait [$(#[doc = $mdoc])*] $kind $m ($($arg),+) ($($ret)?) ($($err)?) }
                )*
            }

            /// The service's handlers for [`Dispatcher`]($crate::typed::Dispatcher), the core's
            /// no-allocator dispatcher: unary methods, notifications and server streams.
            pub trait CoreServer {
                $(
                    $crate::__tandem_method! { @core_trait [$(#[doc = $mdoc])*] $kind $m ($($arg),+) ($($ret)?) ($($err)?) }
                )*
            }

            /// An implementation of the service's handlers, to register (tandem-smol:
            /// `Handlers::serve`) or to hand to [`Dispatcher`]($crate::typed::Dispatcher).
            #[derive(Clone, Copy, Debug, Default)]
            pub struct Serve<S>(pub S);

            impl<R: AsyncRuntime, S: Server<R>> $crate::typed::rt::AsyncService<R> for Serve<S> {
                const DEF: &'static $crate::typed::ServiceDef = &DEF;
                fn serve(
                    &self,
                    incoming: R::Incoming,
                ) -> impl $crate::typed::__private::Future<Output = R::Outcome> + $crate::typed::__private::Send + '_ {
                    async move {
                        let id = R::method(&incoming);
                        $(
                            if id == $id {
                                return $crate::__tandem_method!(@async_serve R self incoming $kind $m ($($arg),+)).await;
                            }
                        )*
                        R::unimplemented(incoming)
                    }
                }
            }

            impl<R: BlockingRuntime, S: BlockingServer<R>> $crate::typed::rt::BlockingService<R> for Serve<S> {
                const DEF: &'static $crate::typed::ServiceDef = &DEF;
                fn serve(&self, incoming: R::Incoming) -> R::Outcome {
                    let id = R::method(&incoming);
                    $(
                        if id == $id {
                            return $crate::__tandem_method!(@blocking_serve R self incoming $kind $m ($($arg),+));
                        }
                    )*
                    R::unimplemented(incoming)
                }
            }

            impl<S: CoreServer> $crate::typed::CoreService for Serve<S> {
                const DEF: &'static $crate::typed::ServiceDef = &DEF;
                fn serve(&mut self, d: &mut $crate::typed::Dispatched<'_, '_, '_>) {
                    let id = d.method();
                    $(
                        $crate::__tandem_method!(@core_serve self d id $id $kind $m ($($arg),+));
                    )*
                    d.unimplemented()
                }
            }

            /// Calls the service's methods on an async runtime's peer (tandem-smol:
            /// `Client::new(peer.clone())`). Errors name the method and the peer.
            pub struct Client<P: AsyncCaller> {
                peer: P,
                deadline: P::Deadline,
            }

            impl<P: AsyncCaller> Client<P> {
                /// A client on `peer`, with the inherited deadline.
                pub fn new(peer: P) -> Self {
                    Client { peer, deadline: Default::default() }
                }
                /// The deadline every call made through this client carries.
                pub fn with_deadline(mut self, deadline: impl Into<P::Deadline>) -> Self {
                    self.deadline = deadline.into();
                    self
                }
                /// The peer handle.
                pub fn peer(&self) -> &P {
                    &self.peer
                }
                $(
                    $crate::__tandem_method! { @client [$(#[doc = $mdoc])*] $kind $m ($($arg),+) ($($ret)?) ($($err)?) }
                )*
            }

            /// Calls the service's methods on a blocking runtime's peer.
            pub struct BlockingClient<P: BlockingCaller> {
                peer: P,
                deadline: P::Deadline,
            }

            impl<P: BlockingCaller> BlockingClient<P> {
                /// A client on `peer`, with the inherited deadline.
                pub fn new(peer: P) -> Self {
                    BlockingClient { peer, deadline: Default::default() }
                }
                /// The deadline every call made through this client carries.
                pub fn with_deadline(mut self, deadline: impl Into<P::Deadline>) -> Self {
                    self.deadline = deadline.into();
                    self
                }
                /// The peer handle.
                pub fn peer(&self) -> &P {
                    &self.peer
                }
                $(
                    $crate::__tandem_method! { @blocking_client [$(#[doc = $mdoc])*] $kind $m ($($arg),+) ($($ret)?) ($($err)?) }
                )*
            }
        }
    };
}

/// The per-method parts of [`service!`](crate::service). Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __tandem_method {
    // ---- declarations ------------------------------------------------------------------
    (@const [$svc:ident] [$($doc:tt)*] unary $m:ident ($req:ty) ($resp:ty) ($($err:ty)?) = $id:tt) => {
        $($doc)*
        pub const $m: $crate::typed::Unary<$req, $resp, $crate::__tandem_method!(@err $($err)?)> =
            $crate::typed::Unary::keyed(MODULE, $id, concat!(stringify!($svc), ".", stringify!($m)));
    };
    (@const [$svc:ident] [$($doc:tt)*] notify $m:ident ($t:ty) () () = $id:tt) => {
        $($doc)*
        pub const $m: $crate::typed::Notification<$t> =
            $crate::typed::Notification::keyed(MODULE, $id, concat!(stringify!($svc), ".", stringify!($m)));
    };
    (@const [$svc:ident] [$($doc:tt)*] signal $m:ident ($t:ty) () () = $id:tt) => {
        $crate::__tandem_method! { @const [$svc] [$($doc)*] notify $m ($t) () () = $id }
    };
    (@const [$svc:ident] [$($doc:tt)*] server_stream $m:ident ($init:ty) ($item:ty) () = $id:tt) => {
        $($doc)*
        pub const $m: $crate::typed::Streaming<$init, (), $item> =
            $crate::typed::Streaming::keyed(MODULE, $id, concat!(stringify!($svc), ".", stringify!($m)));
    };
    (@const [$svc:ident] [$($doc:tt)*] client_stream $m:ident ($init:ty, $up:ty) ($resp:ty) () = $id:tt) => {
        $crate::__tandem_method! { @const [$svc] [$($doc)*] bidi $m ($init, $up) ($resp) () = $id }
    };
    (@const [$svc:ident] [$($doc:tt)*] bidi $m:ident ($init:ty, $up:ty) ($down:ty) () = $id:tt) => {
        $($doc)*
        pub const $m: $crate::typed::Streaming<$init, $up, $down> =
            $crate::typed::Streaming::keyed(MODULE, $id, concat!(stringify!($svc), ".", stringify!($m)));
    };
    (@const [$svc:ident] [$($doc:tt)*] $kind:ident $m:ident $($rest:tt)*) => {
        compile_error!(concat!(
            "service `", stringify!($svc), "`, method `", stringify!($m), "`: `", stringify!($kind),
            "` with these types is not a method form; the forms are: `unary name(Req) -> Resp = id;` ",
            "(optionally `-> Resp | Error`), `notify name(T) = id;`, `signal name(T) = id;`, ",
            "`server_stream name(Init) -> Item = id;`, `client_stream name(Init, Item) -> Resp = id;`, ",
            "`bidi name(Init, Up) -> Down = id;`"
        ));
    };
    (@err) => { $crate::typed::NoError };
    (@err $err:ty) => { $err };

    (@def [$svc:ident] [$($doc:expr)*] $kind:ident $m:ident ($($arg:ty),+) ($($ret:ty)?) ($($err:ty)?) = $id:tt) => {
        $crate::typed::MethodDef {
            name: stringify!($m),
            path: $m.path(),
            id: $m.id(),
            kind: $crate::__tandem_method!(@kind $kind),
            key: match $m.key() {
                Some(k) => k,
                None => $crate::SchemaKey([0; 8]),
            },
            doc: concat!($($doc, "\n",)*),
            request: $crate::__tandem_method!(@schema 0 $kind ($($arg),+) ($($ret)?)),
            response: $crate::__tandem_method!(@schema response $kind ($($arg),+) ($($ret)?)),
            up: $crate::__tandem_method!(@schema up $kind ($($arg),+) ($($ret)?)),
            down: $crate::__tandem_method!(@schema down $kind ($($arg),+) ($($ret)?)),
            error: $crate::typed::__private::error_schema::<$crate::__tandem_method!(@err $($err)?)>(),
        }
    };
    (@kind unary) => { $crate::typed::MethodKind::Unary };
    (@kind notify) => { $crate::typed::MethodKind::Notify };
    (@kind signal) => { $crate::typed::MethodKind::Signal };
    (@kind server_stream) => { $crate::typed::MethodKind::ServerStream };
    (@kind client_stream) => { $crate::typed::MethodKind::ClientStream };
    (@kind bidi) => { $crate::typed::MethodKind::Bidi };
    (@kind $other:ident) => { $crate::typed::MethodKind::Unary };
    (@schema 0 $kind:ident ($first:ty $(, $rest:ty)*) ($($ret:ty)?)) => {
        <$first as $crate::typed::Schema>::SCHEMA
    };
    (@schema response unary ($req:ty) ($resp:ty)) => { Some(<$resp as $crate::typed::Schema>::SCHEMA) };
    (@schema up client_stream ($init:ty, $up:ty) ($resp:ty)) => { Some(<$up as $crate::typed::Schema>::SCHEMA) };
    (@schema up bidi ($init:ty, $up:ty) ($down:ty)) => { Some(<$up as $crate::typed::Schema>::SCHEMA) };
    (@schema down server_stream ($init:ty) ($item:ty)) => { Some(<$item as $crate::typed::Schema>::SCHEMA) };
    (@schema down client_stream ($init:ty, $up:ty) ($resp:ty)) => { Some(<$resp as $crate::typed::Schema>::SCHEMA) };
    (@schema down bidi ($init:ty, $up:ty) ($down:ty)) => { Some(<$down as $crate::typed::Schema>::SCHEMA) };
    (@schema $which:ident $($rest:tt)*) => { None };

    // ---- async handlers ------------------------------------------------------------------
    (@async_trait [$($doc:tt)*] unary $m:ident ($req:ty) ($resp:ty) ($($err:ty)?)) => {
        $($doc)*
        fn $m(
            &self,
            ctx: R::Ctx,
            req: $req,
        ) -> impl $crate::typed::__private::Future<Output = Result<$resp, R::Error<$crate::__tandem_method!(@err $($err)?)>>>
               + $crate::typed::__private::Send;
    };
    (@async_trait [$($doc:tt)*] notify $m:ident ($t:ty) () ()) => {
        $($doc)*
        fn $m(
            &self,
            ctx: R::Ctx,
            value: $t,
        ) -> impl $crate::typed::__private::Future<Output = Result<(), R::Error<$crate::typed::NoError>>>
               + $crate::typed::__private::Send;
    };
    (@async_trait [$($doc:tt)*] signal $m:ident ($t:ty) () ()) => {
        $crate::__tandem_method! { @async_trait [$($doc)*] notify $m ($t) () () }
    };
    (@async_trait [$($doc:tt)*] server_stream $m:ident ($init:ty) ($item:ty) ()) => {
        $($doc)*
        fn $m(
            &self,
            ctx: R::Ctx,
            init: $init,
            items: R::Sender<$item>,
        ) -> impl $crate::typed::__private::Future<Output = Result<(), R::Error<$crate::typed::NoError>>>
               + $crate::typed::__private::Send;
    };
    (@async_trait [$($doc:tt)*] client_stream $m:ident ($init:ty, $up:ty) ($resp:ty) ()) => {
        $($doc)*
        fn $m(
            &self,
            ctx: R::Ctx,
            init: $init,
            items: R::Receiver<$up>,
        ) -> impl $crate::typed::__private::Future<Output = Result<$resp, R::Error<$crate::typed::NoError>>>
               + $crate::typed::__private::Send;
    };
    (@async_trait [$($doc:tt)*] bidi $m:ident ($init:ty, $up:ty) ($down:ty) ()) => {
        $($doc)*
        fn $m(
            &self,
            ctx: R::Ctx,
            init: $init,
            incoming: R::Receiver<$up>,
            outgoing: R::Sender<$down>,
        ) -> impl $crate::typed::__private::Future<Output = Result<(), R::Error<$crate::typed::NoError>>>
               + $crate::typed::__private::Send;
    };
    (@async_trait $($rest:tt)*) => {};

    (@async_serve $r:ident $s:ident $inc:ident unary $m:ident ($($arg:ty),+)) => {
        $r::unary($inc, &$m, |ctx, req| $s.0.$m(ctx, req))
    };
    (@async_serve $r:ident $s:ident $inc:ident notify $m:ident ($($arg:ty),+)) => {
        $r::notify($inc, &$m, |ctx, v| $s.0.$m(ctx, v))
    };
    (@async_serve $r:ident $s:ident $inc:ident signal $m:ident ($($arg:ty),+)) => {
        $r::notify($inc, &$m, |ctx, v| $s.0.$m(ctx, v))
    };
    (@async_serve $r:ident $s:ident $inc:ident server_stream $m:ident ($($arg:ty),+)) => {
        $r::server_stream($inc, &$m, |ctx, init, tx| $s.0.$m(ctx, init, tx))
    };
    (@async_serve $r:ident $s:ident $inc:ident client_stream $m:ident ($($arg:ty),+)) => {
        $r::client_stream($inc, &$m, |ctx, init, rx| $s.0.$m(ctx, init, rx))
    };
    (@async_serve $r:ident $s:ident $inc:ident bidi $m:ident ($($arg:ty),+)) => {
        $r::bidi($inc, &$m, |ctx, init, rx, tx| $s.0.$m(ctx, init, rx, tx))
    };

    // ---- blocking handlers ---------------------------------------------------------------
    (@blocking_trait [$($doc:tt)*] unary $m:ident ($req:ty) ($resp:ty) ($($err:ty)?)) => {
        $($doc)*
        fn $m(&self, ctx: R::Ctx, req: $req) -> Result<$resp, R::Error<$crate::__tandem_method!(@err $($err)?)>>;
    };
    (@blocking_trait [$($doc:tt)*] notify $m:ident ($t:ty) () ()) => {
        $($doc)*
        fn $m(&self, ctx: R::Ctx, value: $t) -> Result<(), R::Error<$crate::typed::NoError>>;
    };
    (@blocking_trait [$($doc:tt)*] signal $m:ident ($t:ty) () ()) => {
        $crate::__tandem_method! { @blocking_trait [$($doc)*] notify $m ($t) () () }
    };
    (@blocking_trait [$($doc:tt)*] server_stream $m:ident ($init:ty) ($item:ty) ()) => {
        $($doc)*
        fn $m(&self, ctx: R::Ctx, init: $init, items: R::Sender<$item>) -> Result<(), R::Error<$crate::typed::NoError>>;
    };
    (@blocking_trait [$($doc:tt)*] client_stream $m:ident ($init:ty, $up:ty) ($resp:ty) ()) => {
        $($doc)*
        fn $m(&self, ctx: R::Ctx, init: $init, items: R::Receiver<$up>) -> Result<$resp, R::Error<$crate::typed::NoError>>;
    };
    (@blocking_trait [$($doc:tt)*] bidi $m:ident ($init:ty, $up:ty) ($down:ty) ()) => {
        $($doc)*
        fn $m(
            &self,
            ctx: R::Ctx,
            init: $init,
            incoming: R::Receiver<$up>,
            outgoing: R::Sender<$down>,
        ) -> Result<(), R::Error<$crate::typed::NoError>>;
    };
    (@blocking_trait $($rest:tt)*) => {};

    (@blocking_serve $r:ident $s:ident $inc:ident unary $m:ident ($($arg:ty),+)) => {
        $r::unary($inc, &$m, |ctx, req| $s.0.$m(ctx, req))
    };
    (@blocking_serve $r:ident $s:ident $inc:ident notify $m:ident ($($arg:ty),+)) => {
        $r::notify($inc, &$m, |ctx, v| $s.0.$m(ctx, v))
    };
    (@blocking_serve $r:ident $s:ident $inc:ident signal $m:ident ($($arg:ty),+)) => {
        $r::notify($inc, &$m, |ctx, v| $s.0.$m(ctx, v))
    };
    (@blocking_serve $r:ident $s:ident $inc:ident server_stream $m:ident ($($arg:ty),+)) => {
        $r::server_stream($inc, &$m, |ctx, init, tx| $s.0.$m(ctx, init, tx))
    };
    (@blocking_serve $r:ident $s:ident $inc:ident client_stream $m:ident ($($arg:ty),+)) => {
        $r::client_stream($inc, &$m, |ctx, init, rx| $s.0.$m(ctx, init, rx))
    };
    (@blocking_serve $r:ident $s:ident $inc:ident bidi $m:ident ($($arg:ty),+)) => {
        $r::bidi($inc, &$m, |ctx, init, rx, tx| $s.0.$m(ctx, init, rx, tx))
    };

    // ---- the core alone ------------------------------------------------------------------
    (@core_trait [$($doc:tt)*] unary $m:ident ($req:ty) ($resp:ty) ($($err:ty)?)) => {
        $($doc)*
        fn $m(
            &mut self,
            ctx: &$crate::typed::CoreCtx,
            req: $req,
        ) -> Result<$resp, $crate::typed::CoreError<$crate::__tandem_method!(@err $($err)?)>>;
    };
    (@core_trait [$($doc:tt)*] notify $m:ident ($t:ty) () ()) => {
        $($doc)*
        fn $m(&mut self, ctx: &$crate::typed::CoreCtx, value: $t) -> Result<(), $crate::typed::CoreError>;
    };
    (@core_trait [$($doc:tt)*] signal $m:ident ($t:ty) () ()) => {
        $crate::__tandem_method! { @core_trait [$($doc)*] notify $m ($t) () () }
    };
    (@core_trait [$($doc:tt)*] server_stream $m:ident ($init:ty) ($item:ty) ()) => {
        $($doc)*
        fn $m(
            &mut self,
            ctx: &$crate::typed::CoreCtx,
            init: $init,
            items: &mut $crate::typed::ItemSink<'_, '_, $item>,
        ) -> Result<(), $crate::typed::CoreError>;
    };
    (@core_trait $($rest:tt)*) => {};

    (@core_serve $s:ident $d:ident $got:ident $id:tt unary $m:ident ($($arg:ty),+)) => {
        if $got == $id {
            return $d.unary(&$m, |ctx, req| $s.0.$m(ctx, req));
        }
    };
    (@core_serve $s:ident $d:ident $got:ident $id:tt notify $m:ident ($($arg:ty),+)) => {
        if $got == $id {
            return $d.notify(&$m, |ctx, v| $s.0.$m(ctx, v));
        }
    };
    (@core_serve $s:ident $d:ident $got:ident $id:tt signal $m:ident ($($arg:ty),+)) => {
        if $got == $id {
            return $d.notify(&$m, |ctx, v| $s.0.$m(ctx, v));
        }
    };
    (@core_serve $s:ident $d:ident $got:ident $id:tt server_stream $m:ident ($($arg:ty),+)) => {
        if $got == $id {
            return $d.server_stream(&$m, |ctx, init, items| $s.0.$m(ctx, init, items));
        }
    };
    (@core_serve $($rest:tt)*) => {};

    // ---- clients ---------------------------------------------------------------------------
    (@client [$($doc:tt)*] unary $m:ident ($req:ty) ($resp:ty) ($($err:ty)?)) => {
        $($doc)*
        pub fn $m<'a>(
            &'a self,
            req: &'a $req,
        ) -> impl $crate::typed::__private::Future<Output = Result<$resp, P::Error<$crate::__tandem_method!(@err $($err)?)>>>
               + $crate::typed::__private::Send + 'a {
            self.peer.unary(&$m, req, self.deadline.clone())
        }
    };
    (@client [$($doc:tt)*] notify $m:ident ($t:ty) () ()) => {
        $($doc)*
        pub fn $m<'a>(
            &'a self,
            value: &'a $t,
        ) -> impl $crate::typed::__private::Future<Output = Result<(), P::Error<$crate::typed::NoError>>>
               + $crate::typed::__private::Send + 'a {
            self.peer.notify(&$m, value, self.deadline.clone())
        }
    };
    (@client [$($doc:tt)*] signal $m:ident ($t:ty) () ()) => {
        $($doc)*
        pub fn $m<'a>(
            &'a self,
            value: &'a $t,
        ) -> impl $crate::typed::__private::Future<Output = Result<(), P::Error<$crate::typed::NoError>>>
               + $crate::typed::__private::Send + 'a {
            self.peer.signal(&$m, value)
        }
    };
    (@client [$($doc:tt)*] server_stream $m:ident ($init:ty) ($item:ty) ()) => {
        $($doc)*
        pub fn $m<'a>(
            &'a self,
            init: &'a $init,
        ) -> impl $crate::typed::__private::Future<Output = Result<P::Receiver<$item>, P::Error<$crate::typed::NoError>>>
               + $crate::typed::__private::Send + 'a {
            self.peer.server_stream(&$m, init, self.deadline.clone())
        }
    };
    (@client [$($doc:tt)*] client_stream $m:ident ($init:ty, $up:ty) ($resp:ty) ()) => {
        $crate::__tandem_method! { @client [$($doc)*] bidi $m ($init, $up) ($resp) () }
    };
    (@client [$($doc:tt)*] bidi $m:ident ($init:ty, $up:ty) ($down:ty) ()) => {
        $($doc)*
        #[allow(clippy::type_complexity)]
        pub fn $m<'a>(
            &'a self,
            init: &'a $init,
        ) -> impl $crate::typed::__private::Future<
            Output = Result<(P::Sender<$up>, P::Receiver<$down>), P::Error<$crate::typed::NoError>>,
        > + $crate::typed::__private::Send + 'a {
            self.peer.open_stream(&$m, init, self.deadline.clone())
        }
    };
    (@client $($rest:tt)*) => {};

    (@blocking_client [$($doc:tt)*] unary $m:ident ($req:ty) ($resp:ty) ($($err:ty)?)) => {
        $($doc)*
        pub fn $m(&self, req: &$req) -> Result<$resp, P::Error<$crate::__tandem_method!(@err $($err)?)>> {
            self.peer.unary(&$m, req, self.deadline.clone())
        }
    };
    (@blocking_client [$($doc:tt)*] notify $m:ident ($t:ty) () ()) => {
        $($doc)*
        pub fn $m(&self, value: &$t) -> Result<(), P::Error<$crate::typed::NoError>> {
            self.peer.notify(&$m, value, self.deadline.clone())
        }
    };
    (@blocking_client [$($doc:tt)*] signal $m:ident ($t:ty) () ()) => {
        $($doc)*
        pub fn $m(&self, value: &$t) -> Result<(), P::Error<$crate::typed::NoError>> {
            self.peer.signal(&$m, value)
        }
    };
    (@blocking_client [$($doc:tt)*] server_stream $m:ident ($init:ty) ($item:ty) ()) => {
        $($doc)*
        pub fn $m(&self, init: &$init) -> Result<P::Receiver<$item>, P::Error<$crate::typed::NoError>> {
            self.peer.server_stream(&$m, init, self.deadline.clone())
        }
    };
    (@blocking_client [$($doc:tt)*] client_stream $m:ident ($init:ty, $up:ty) ($resp:ty) ()) => {
        $crate::__tandem_method! { @blocking_client [$($doc)*] bidi $m ($init, $up) ($resp) () }
    };
    (@blocking_client [$($doc:tt)*] bidi $m:ident ($init:ty, $up:ty) ($down:ty) ()) => {
        $($doc)*
        #[allow(clippy::type_complexity)]
        pub fn $m(
            &self,
            init: &$init,
        ) -> Result<(P::Sender<$up>, P::Receiver<$down>), P::Error<$crate::typed::NoError>> {
            self.peer.open_stream(&$m, init, self.deadline.clone())
        }
    };
    (@blocking_client $($rest:tt)*) => {};
}
