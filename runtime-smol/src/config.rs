//! [`ServerConfig`] and [`ClientConfig`]: the settings every runtime has (defined once in
//! `tandem_runtime::configs!`), plus where this runtime's tasks run. (Layer 1: imports
//! `spawner`.)

use std::sync::Arc;

use crate::spawner::{SmolSpawner, Spawner};

tandem_runtime::configs! {
    server {
        /// Where connection drivers, the accept loop and handlers run (default
        /// [`SmolSpawner`]).
        spawner: Arc<dyn Spawner> = Arc::new(SmolSpawner),
    }
    client {
        /// Where the connection's driver and handlers run (default [`SmolSpawner`]).
        spawner: Arc<dyn Spawner> = Arc::new(SmolSpawner),
    }
}
