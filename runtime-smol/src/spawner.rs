//! Where tasks run: the [`Spawner`] trait and its default, [`SmolSpawner`]. (Layer 0.)

use core::future::Future;
use core::pin::Pin;

/// A task for a [`Spawner`]: a boxed, `Send` future.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs the runtime's tasks — connection drivers, accept loops and handlers — on an executor
/// of the application's choice. Tasks are detached: the runtime never waits for a
/// `JoinHandle`. Sockets and timers come from `async-io`, whose reactor runs on its own thread
/// when no `async_io::block_on` drives it, so any executor works.
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
