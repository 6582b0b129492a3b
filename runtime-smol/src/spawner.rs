//! Where handler tasks run: the [`Spawner`] trait and its default, [`SmolSpawner`]; and the
//! timer of the shared futures. (Layer 0.)

use core::future::Future;
use core::pin::Pin;

/// A task for a [`Spawner`]: a boxed, `Send` future.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs the runtime's handler tasks on an executor of the application's choice. Tasks are
/// detached: the runtime never waits for a `JoinHandle`.
///
/// Sockets are not the executor's: every connection, listener and reconnection attempt is
/// driven by the I/O threads shared with tandem-std (a few threads for the whole process,
/// waiting on epoll/kqueue), which also run inline handlers
/// ([`Handlers::raw_unary_inline`](crate::Handlers::raw_unary_inline)) and wake the tasks
/// waiting on a connection. Deadline timers come from `async-io`, whose reactor runs on its own
/// thread when no `async_io::block_on` drives it. So any executor works.
///
/// A tokio application hands handlers to tokio (so that they may use tokio's timers and I/O):
///
/// ```
/// #[derive(Debug)]
/// struct Tokio(tokio::runtime::Handle);
///
/// impl tandem_smol::Spawner for Tokio {
///     fn spawn(&self, task: tandem_smol::Task) {
///         self.0.spawn(task);
///     }
/// }
/// ```
///
/// `spawn` must not run the task to completion before returning (the runtime may hold
/// internal state that the task needs); every executor's `spawn` queues it.
pub trait Spawner: Send + Sync + 'static {
    /// Starts `task` and returns at once.
    fn spawn(&self, task: Task);
}

/// The default [`Spawner`]: smol's global executor (`smol::spawn(..).detach()`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SmolSpawner;

impl Spawner for SmolSpawner {
    fn spawn(&self, task: Task) {
        smol::spawn(task).detach();
    }
}

/// The timer of the shared futures (`tandem_runtime::clock::SleepUntil`: deadlines of calls
/// and waits, shutdown grace): `async-io`'s, whose reactor runs on its own thread, so it works
/// under any executor. (The connections' protocol timers are the I/O threads'.)
pub(crate) fn sleep_until(at: std::time::Instant) -> tandem_runtime::clock::Sleep {
    Box::pin(async move {
        async_io::Timer::at(at).await;
    })
}
