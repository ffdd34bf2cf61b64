//! What the binary's integration tests share: the binary, and a child
//! process whose log lines are read as they come (never by sleeping).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// `GET path` over HTTP/1.0; the whole response (head and body).
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The `keepa-harvest` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_keepa-harvest"))
}

/// A running child whose stderr lines arrive on a channel (a thread drains
/// the pipe, so the child never blocks on it).
pub struct Running {
    pub child: Child,
    lines: Receiver<String>,
    /// Every stderr line read so far.
    pub seen: Vec<String>,
}

impl Running {
    /// Starts the binary with `args` and `RUST_LOG=harvest=debug`.
    pub fn start(args: &[String]) -> Running {
        Running::start_with(args, &[("RUST_LOG", "harvest=debug")])
    }

    /// Starts the binary with `args` and extra environment variables.
    pub fn start_with(args: &[String], env: &[(&str, &str)]) -> Running {
        let mut child = Command::new(bin())
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) for the first stderr line satisfying `pred`; the
    /// child is killed and the test fails if none comes in time.
    pub fn wait_line(&mut self, within: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(e) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "no such line ({e:?}) within {within:?}:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }

    /// Waits (bounded) until "committed" log lines report at least `n` new deals.
    pub fn wait_deals(&mut self, n: u64, within: Duration) {
        let deadline = Instant::now() + within;
        let mut deals = 0;
        while deals < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if line.contains("committed") {
                        deals += new_deals(&line);
                    }
                    self.seen.push(line);
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!("not {n} deals within {within:?}:\n{}", self.seen.join("\n"));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.child.wait();
                    panic!(
                        "the run ended after {deals} deals:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} failed");
    }

    /// Waits (bounded) for the exit; the child is killed past the deadline.
    pub fn wait_exit(mut self, within: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader thread ends at EOF; collect what it still holds.
                let rest = Instant::now() + Duration::from_secs(5);
                while let Ok(l) = self
                    .lines
                    .recv_timeout(rest.saturating_duration_since(Instant::now()))
                {
                    self.seen.push(l);
                }
                return (status, self.seen.join("\n"));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the run did not exit within {within:?}");
            }
            // Keep the log for the failure message while waiting.
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(l) => self.seen.push(l),
                Err(_) => std::thread::park_timeout(Duration::from_millis(20)),
            }
        }
    }
}

/// `new_deals=N` of a pipeline "committed" debug line.
pub fn new_deals(line: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("new_deals="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `keepa-harvest fake-keepa` in a child process, killed on drop.
pub struct FakeServer {
    child: std::process::Child,
    /// `http://ADDR`.
    pub url: String,
}

impl FakeServer {
    /// Starts it for `key` with `args` (after `--port 0 --keys KEY`).
    pub fn start(key: &str, args: &[&str]) -> FakeServer {
        let mut child = Command::new(bin())
            .args(["fake-keepa", "--port", "0", "--keys", key])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        FakeServer { child, url }
    }

    /// `/_fake/stats` for our (only) key.
    pub fn stats(&self) -> serde_json::Value {
        self.stats_all()["keys"][0].clone()
    }

    /// The whole `/_fake/stats` document.
    pub fn stats_all(&self) -> serde_json::Value {
        let addr = self.url.trim_start_matches("http://").parse().unwrap();
        let response = http_get(addr, "/_fake/stats");
        let (_, body) = response.split_once("\r\n\r\n").unwrap();
        serde_json::from_str(body).unwrap()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
