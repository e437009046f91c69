//! Redis servers of a test's own.

use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::{free_port, wait_for, Process};

/// A Redis server of the test's own (no persistence) on its own port, so a test can
/// stop and restart it without touching anyone else's.
pub struct RedisServer {
    process: Process,
    pub port: u16,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    fn start_on(port: u16) -> Self {
        let process = Process::spawn(
            "redis",
            Command::new("redis-server").args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]),
        );
        wait_for("redis-server to listen", Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Self { process, port }
    }

    /// The value for `REDIS_URL`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// How many clients are connected to it now (`INFO clients`), this query's included.
    pub fn connected_clients(&self) -> i64 {
        let mut connection = redis::Client::open(self.url())
            .and_then(|client| client.get_connection())
            .expect("Redis connection");
        let info: String = redis::cmd("INFO")
            .arg("clients")
            .query(&mut connection)
            .expect("INFO clients");
        info.lines()
            .find_map(|line| line.strip_prefix("connected_clients:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("connected_clients in INFO clients")
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        self.process.kill9();
    }

    /// Starts again on the same port (empty: nothing persists).
    pub fn restart(&mut self) {
        self.kill();
        *self = Self::start_on(self.port);
    }
}
