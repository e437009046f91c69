//! Processes: this workspace's binaries, child processes stopped when dropped, ports,
//! waiting for a condition, and the host's process table.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A built binary of this workspace (`cargo build --workspace --bins` puts them there).
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Polls `check` until it returns `Some`, or panics naming `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where test processes write their logs: `target/<profile>/e2e-logs/`.
fn log_path(name: &str) -> PathBuf {
    let dir = bin_dir().join("e2e-logs");
    std::fs::create_dir_all(&dir).expect("log dir");
    dir.join(format!("{name}-{}-{}.log", std::process::id(), free_port()))
}

/// `target/<profile>/`: test binaries live in its `deps/`, other binaries in it.
fn bin_dir() -> PathBuf {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .expect("the running binary has a directory");
    match exe_dir.file_name() {
        Some(name) if name == "deps" => exe_dir.parent().map(Path::to_path_buf).unwrap_or(exe_dir),
        _ => exe_dir,
    }
}

/// A child process that is killed (with SIGTERM, then SIGKILL) when dropped.
pub struct Process {
    child: Child,
    name: String,
    /// stdout and stderr, together.
    log: PathBuf,
}

impl Process {
    /// Starts `command` with its output going to a log file under `target/`.
    pub fn spawn(name: &str, command: &mut Command) -> Self {
        let log = log_path(name);
        let file = std::fs::File::create(&log).expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file handle"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Self {
            child,
            name: name.to_owned(),
            log,
        }
    }

    /// Everything the process has printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the process has printed `needle` at least `times` times.
    pub fn wait_for_output(&self, needle: &str, times: usize, timeout: Duration) {
        wait_for(
            &format!("{} to print {needle:?} {times} times", self.name),
            timeout,
            || (self.output().matches(needle).count() >= times).then_some(()),
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn signal(&self, signal: Signal) {
        // The child may have exited already; then there is nothing to signal.
        let _ = kill(Pid::from_raw(self.child.id() as i32), signal);
    }

    /// SIGKILL, as a crash would: no cleanup, no commit.
    pub fn kill9(&mut self) {
        self.signal(Signal::SIGKILL);
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the exit status, failing the test after `within`.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        let name = self.name.clone();
        wait_for(&format!("{name} to exit after SIGTERM"), within, || {
            self.child.try_wait().ok().flatten()
        })
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.is_running() {
            self.signal(Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.is_running() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One process as `/proc/<pid>/stat` describes it.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: u32,
    pub parent: u32,
    /// `R`, `S`, `Z` (zombie)…
    pub state: char,
}

/// Every process on the machine.
pub fn processes() -> Vec<ProcInfo> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name is in parentheses and may hold spaces: split after it.
            let mut fields = stat.get(stat.rfind(')')? + 2..)?.split(' ');
            let state = fields.next()?.chars().next()?;
            let parent = fields.next()?.parse().ok()?;
            Some(ProcInfo { pid, parent, state })
        })
        .collect()
}

/// Processes whose environment holds `NAME=value` (a marker a test gives its children).
pub fn processes_with_env(name: &str, value: &str) -> Vec<u32> {
    let needle = format!("{name}={value}");
    processes()
        .into_iter()
        .filter(|p| {
            std::fs::read(format!("/proc/{}/environ", p.pid))
                .map(|env| env.split(|b| *b == 0).any(|var| var == needle.as_bytes()))
                .unwrap_or(false)
        })
        .map(|p| p.pid)
        .collect()
}
