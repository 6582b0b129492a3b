//! nginx as a WebSocket reverse proxy in front of a tandem server, for the `ws://`-through-a-
//! proxy tests: a configuration written into a temporary directory (pid file, logs and temp
//! paths there too), nginx run as a child process in the foreground on a free loopback port,
//! killed and started again on the same port to cut every connection it carries.
//!
//! nginx is a Debian package (`nginx`) that `.ci/run` installs; without it [`Nginx::start`]
//! panics with what to install, so that a machine without it fails the test rather than skip it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where Debian installs nginx.
pub const NGINX: &str = "/usr/sbin/nginx";

/// A running nginx (killed when dropped, its directory removed).
pub struct Nginx {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

/// The configuration: one server on `port` whose `location` is proxied to `backend` with the
/// WebSocket upgrade (the block README.md shows).
fn config(dir: &Path, port: u16, backend: SocketAddr, location: &str) -> String {
    let d = dir.display();
    format!(
        "master_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}\n\
           server {{\n    listen 127.0.0.1:{port};\n\
             location {location} {{\n\
               proxy_pass http://{backend};\n\
               proxy_http_version 1.1;\n\
               proxy_set_header Upgrade $http_upgrade;\n\
               proxy_set_header Connection $connection_upgrade;\n\
               proxy_set_header Host $host;\n\
               proxy_read_timeout 3600s;\n\
               proxy_send_timeout 3600s;\n\
               proxy_buffering off;\n\
             }}\n  }}\n}}\n"
    )
}

impl Nginx {
    /// Starts nginx on a free loopback port, proxying `location` (e.g. `/rpc`) to `backend`.
    /// Panics if nginx is not installed (saying how to install it) or does not start.
    pub fn start(backend: SocketAddr, location: &str) -> Nginx {
        assert!(
            Path::new(NGINX).exists(),
            "{NGINX} is missing: this test needs nginx as a WebSocket reverse proxy; install it \
             (Debian/Ubuntu: `apt-get install -y nginx`; .ci/run does)"
        );
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tandem-nginx-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create nginx's directory");
        // A free port: bound, then released for nginx (retried if taken meanwhile).
        for _ in 0..5 {
            let port =
                TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
            std::fs::write(dir.join("nginx.conf"), config(&dir, port, backend, location))
                .expect("write nginx.conf");
            let mut n = Nginx { child: None, dir: dir.clone(), port };
            if n.launch() {
                return n;
            }
            n.dir = PathBuf::new(); // keep the directory for the next attempt
        }
        panic!(
            "nginx did not start; its log:\n{}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
    }

    /// Runs nginx and waits until it accepts connections; false if it exited.
    fn launch(&mut self) -> bool {
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(self.dir.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run nginx");
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if TcpStream::connect(self.addr()).is_ok() {
                return true;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    self.child = None;
                    return false;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Kills nginx (every connection it carries ends at once).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts nginx again on the same port (after [`kill`](Self::kill)).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "kill nginx first");
        for _ in 0..50 {
            if self.launch() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("nginx did not start again on port {}", self.port);
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.kill();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
