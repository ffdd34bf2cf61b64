//! What the binary's integration tests share: the binary run with a
//! deadline, a child process whose log lines are read as they come (never
//! by sleeping), private temp dirs, fake Keepa servers (in-process or a
//! child) and a tiny HTML server. Everything listens on 127.0.0.1 only.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long any one command may take before it is killed.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// The `keepa-harvest` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_keepa-harvest"))
}

/// A fresh directory for one test.
pub fn temp_dir(suite: &str, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kh-{suite}-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Exit `code`, `needle` on stderr, and never a panic.
    #[track_caller]
    pub fn expect(&self, code: i32, needle: &str) {
        assert!(
            !self.stderr.contains("panicked") && !self.stdout.contains("panicked"),
            "a panic:\n{}",
            self.stderr
        );
        assert_eq!(self.code(), Some(code), "stderr:\n{}", self.stderr);
        assert!(
            self.stderr.contains(needle),
            "{needle:?} not on stderr:\n{}",
            self.stderr
        );
    }
}

/// A command without `KEEPA_API_KEY` and `RUST_LOG` from the environment.
pub fn command(args: &[&str]) -> Command {
    command_of(&bin(), args)
}

/// Like [`command`], for the binary at `bin`.
pub fn command_of(bin: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env_remove("KEEPA_API_KEY")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to its end, killed past [`DEADLINE`].
pub fn finish(cmd: Command) -> Outcome {
    finish_within(cmd, DEADLINE)
}

/// Runs `cmd` to its end, killed (and the test failed) past `within`.
pub fn finish_within(mut cmd: Command, within: Duration) -> Outcome {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Running::new(child).wait(within)
}

/// The binary with `args`, without `RUST_LOG` from the environment.
pub fn command_owned(args: &[String]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args).env_remove("RUST_LOG").stdin(Stdio::null());
    cmd
}

/// Runs the binary with `args` (and the key, if any) to its end.
pub fn run(args: &[&str], key: Option<&str>) -> Outcome {
    let mut cmd = command(args);
    if let Some(k) = key {
        cmd.env("KEEPA_API_KEY", k);
    }
    finish(cmd)
}

/// A running child whose stderr lines arrive on a channel and whose stdout
/// (when piped) is collected, both by threads, so it never blocks on a
/// full pipe.
pub struct Running {
    pub child: Child,
    lines: Receiver<String>,
    /// Every stderr line read so far.
    pub seen: Vec<String>,
    stdout: Option<Receiver<String>>,
}

impl Running {
    /// Starts the binary with `args` and `RUST_LOG=harvest=debug`.
    pub fn start(args: &[String]) -> Running {
        Running::start_with(args, &[("RUST_LOG", "harvest=debug")])
    }

    /// Starts the binary with `args` and extra environment variables
    /// (stdout discarded).
    pub fn start_with(args: &[String], env: &[(&str, &str)]) -> Running {
        let child = Command::new(bin())
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Running::new(child)
    }

    /// Watches `child`, spawned with stderr (and optionally stdout) piped.
    pub fn new(mut child: Child) -> Running {
        let err = child.stderr.take().expect("stderr piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdout = child.stdout.take().map(|mut out| {
            let (otx, stdout) = mpsc::channel();
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = out.read_to_string(&mut text);
                let _ = otx.send(text);
            });
            stdout
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
            stdout,
        }
    }

    /// Feeds stderr lines to `done` until it returns true (bounded); the
    /// child is killed and the test fails if that does not happen in time.
    pub fn wait_until(&mut self, mut done: impl FnMut(&str) -> bool, what: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let err = match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = done(&line);
                    self.seen.push(line);
                    if hit {
                        return;
                    }
                    continue;
                }
                Err(e) => e,
            };
            let _ = self.child.kill();
            let _ = self.child.wait();
            let why = match err {
                RecvTimeoutError::Timeout => format!("no {what} within {within:?}"),
                RecvTimeoutError::Disconnected => format!("the run ended before {what}"),
            };
            panic!("{why}:\n{}", self.seen.join("\n"));
        }
    }

    /// Waits (bounded) for the first stderr line satisfying `pred`.
    pub fn wait_line(&mut self, within: Duration, pred: impl Fn(&str) -> bool) -> String {
        let mut found = String::new();
        self.wait_until(
            |line| {
                let hit = pred(line);
                if hit {
                    found = line.to_string();
                }
                hit
            },
            "such line",
            within,
        );
        found
    }

    /// Waits (bounded) until "committed" log lines report at least `n` new deals.
    pub fn wait_deals(&mut self, n: u64, within: Duration) {
        if n == 0 {
            return;
        }
        let mut deals = 0;
        self.wait_until(
            |line| {
                if line.contains("committed") {
                    deals += new_deals(line);
                }
                deals >= n
            },
            &format!("{n} deals"),
            within,
        );
    }

    /// Counts "committed" log lines until the run ends, or SIGKILLs it at
    /// the `kill_at`-th one (bounded by `within`: past it the child is
    /// killed and the test fails). Returns the commits seen and, when the
    /// run ended by itself, how it ended (`None`: killed).
    pub fn count_commits(
        mut self,
        kill_at: Option<usize>,
        within: Duration,
    ) -> (usize, Option<Outcome>) {
        let deadline = Instant::now() + within;
        let mut commits = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    commits += usize::from(line.contains("committed"));
                    self.seen.push(line);
                    if kill_at.is_some_and(|n| commits >= n) {
                        let _ = self.child.kill();
                        let _ = self.child.wait();
                        return (commits, None);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    return (commits, Some(self.wait(left.max(Duration::from_secs(5)))));
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "the run did not end within {within:?}:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }

    /// Sends `sig` (`-INT`, `-TERM`) to the child.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} failed");
    }

    /// Waits (bounded) for the exit; the child is killed past the deadline.
    pub fn wait(mut self, within: Duration) -> Outcome {
        let deadline = Instant::now() + within;
        // The stderr thread ends when the child closes the pipe.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "the command did not end within {within:?}:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
        let status = self.child.wait().unwrap();
        let left = deadline.saturating_duration_since(Instant::now());
        let stdout = self
            .stdout
            .and_then(|out| out.recv_timeout(left.max(Duration::from_secs(5))).ok())
            .unwrap_or_default();
        Outcome {
            status,
            stdout,
            stderr: self.seen.join("\n"),
        }
    }
}

/// An in-process fake Keepa on its own thread and runtime; it stops when
/// dropped.
pub struct Fake {
    pub base_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Fake {
    pub fn start(builder: fake_keepa::FakeKeepaBuilder) -> Fake {
        let (tx, rx) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = builder.start().await.unwrap();
                tx.send(server.base_url()).unwrap();
                let _ = stopped.await;
                server.shutdown().await;
            });
        });
        let base_url = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        Fake {
            base_url,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A tiny HTTP/1.1 server answering every request with `status` and an
/// HTML page (`Content-Type: text/html`), as a proxy or a captive portal
/// would. Lives on its own thread until the test process ends.
pub fn html_server(status: &'static str) -> SocketAddr {
    let body = format!(
        "<!DOCTYPE html>\n<html><head><title>{status}</title></head>\
         <body><h1>{status}</h1><p>nginx</p></body></html>\n"
    );
    answering(status, "text/html; charset=utf-8", body)
}

/// A tiny HTTP/1.1 server answering every request with `status` and
/// `body`. Lives on its own thread until the test process ends.
pub fn answering(status: &'static str, content_type: &'static str, body: String) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            // Read the request (head and body), then answer and close.
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                let text = String::from_utf8_lossy(&req).to_ascii_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let body_len = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if req.len() >= end + 4 + body_len {
                        break;
                    }
                }
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.flush();
        }
    });
    addr
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

/// `GET path` over HTTP/1.1 (`Connection: close`, so the server ends the
/// response by closing) with deadlines; the whole response.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The binary at a path any user may run: [`bin`] itself when every
/// directory above it lets others through, else a copy in `dir` (a clone
/// in a private directory, say).
#[cfg(unix)]
pub fn bin_for_anyone(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = bin();
    let open = bin
        .ancestors()
        .skip(1)
        .all(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
    if open {
        return bin;
    }
    let copy = dir.join("keepa-harvest");
    std::fs::copy(&bin, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Serves `router` (a Keepa stub) on 127.0.0.1 from its own thread and
/// runtime, until the test process ends.
pub fn serve_stub(router: axum::Router) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, router).await.unwrap();
        });
    });
    rx.recv().unwrap()
}
