//! [`ServerConfig`] and [`ClientConfig`]: the settings every runtime has (defined once in
//! `tandem_runtime::configs!`), plus where this runtime's tasks run. (Layer 1: imports
//! `spawner`.)

use std::sync::Arc;

use crate::spawner::{SmolSpawner, Spawner};

tandem_runtime::configs! {
    server {
        /// Where handlers run (default [`SmolSpawner`]); connections, the listener and inline
        /// handlers run on the shared I/O threads.
        spawner: Arc<dyn Spawner> = Arc::new(SmolSpawner),
    }
    client {
        /// Where handlers run (default [`SmolSpawner`]); the connection and inline handlers run
        /// on the shared I/O threads.
        spawner: Arc<dyn Spawner> = Arc::new(SmolSpawner),
    }
}
