//! The bars are drawn on a small terminal emulator (rows, a cursor, and a
//! terminal's deferred wrap at the right margin, which is how indicatif
//! ends a bar line), so the tests see the screen a user would.

use std::io;
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use tracing::Dispatch;

use super::*;

const WIDTH: usize = 80;

#[derive(Debug, Default)]
struct Screen {
    rows: Vec<Vec<char>>,
    row: usize,
    col: usize,
}

impl Screen {
    fn put(&mut self, c: char) {
        match c {
            '\r' => self.col = 0,
            '\n' => {
                self.row += 1;
                self.col = 0;
            }
            c => {
                if self.col == WIDTH {
                    self.row += 1;
                    self.col = 0;
                }
                if self.rows.len() <= self.row {
                    self.rows.resize(self.row + 1, Vec::new());
                }
                let r = &mut self.rows[self.row];
                if r.len() <= self.col {
                    r.resize(self.col + 1, ' ');
                }
                r[self.col] = c;
                self.col += 1;
            }
        }
    }

    /// The screen's non-empty rows, top to bottom.
    fn lines(&self) -> Vec<String> {
        self.rows
            .iter()
            .map(|r| r.iter().collect::<String>().trim_end().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }
}

/// A terminal over a shared [`Screen`]; also the log's output.
#[derive(Debug, Clone, Default)]
struct Term(Arc<Mutex<Screen>>);

impl Term {
    fn screen(&self) -> std::sync::MutexGuard<'_, Screen> {
        self.0.lock().unwrap()
    }

    fn lines(&self) -> Vec<String> {
        self.screen().lines()
    }
}

impl TermLike for Term {
    fn width(&self) -> u16 {
        WIDTH as u16
    }
    fn height(&self) -> u16 {
        30
    }
    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        let mut s = self.screen();
        s.row = s.row.saturating_sub(n);
        s.col = s.col.min(WIDTH - 1);
        Ok(())
    }
    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        let mut s = self.screen();
        s.row += n;
        s.col = s.col.min(WIDTH - 1);
        Ok(())
    }
    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        let mut s = self.screen();
        s.col = (s.col + n).min(WIDTH - 1);
        Ok(())
    }
    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        let mut s = self.screen();
        s.col = s.col.saturating_sub(n);
        Ok(())
    }
    fn write_line(&self, line: &str) -> io::Result<()> {
        self.write_str(line)?;
        self.screen().put('\n');
        Ok(())
    }
    fn write_str(&self, text: &str) -> io::Result<()> {
        let mut s = self.screen();
        text.chars().for_each(|c| s.put(c));
        Ok(())
    }
    fn clear_line(&self) -> io::Result<()> {
        let mut s = self.screen();
        let row = s.row;
        if let Some(r) = s.rows.get_mut(row) {
            r.clear();
        }
        s.col = 0;
        Ok(())
    }
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Write for Term {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.write_str(&String::from_utf8_lossy(bytes))?;
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Two bars (a counter and a status line) on `term`.
fn two_bars(term: &Term) -> (MultiProgress, ProgressBar, ProgressBar) {
    let mp = MultiProgress::with_draw_target(ProgressDrawTarget::term_like(Box::new(term.clone())));
    let deals = mp.add(ProgressBar::new(200));
    deals.set_style(ProgressStyle::with_template("deals {pos}/{len}").unwrap());
    let status = mp.add(ProgressBar::new_spinner());
    status.set_style(ProgressStyle::with_template("{msg}").unwrap());
    status.set_message("balance 5");
    (mp, deals, status)
}

/// A subscriber writing bare messages through [`AboveBars`] to `out`.
fn logger<M>(mp: &MultiProgress, out: M) -> Dispatch
where
    M: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    Dispatch::new(
        tracing_subscriber::fmt()
            .with_writer(AboveBars::new(mp.clone(), out))
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .with_level(false)
            .finish(),
    )
}

#[test]
fn log_lines_print_above_the_bars_and_leave_no_copy() {
    let term = Term::default();
    let (mp, deals, _status) = two_bars(&term);
    let out = term.clone();
    let log = logger(&mp, move || out.clone());
    tracing::dispatcher::with_default(&log, || {
        for i in 0..5 {
            deals.set_position(i * 10);
            tracing::info!("line {i}");
        }
    });
    assert_eq!(
        term.lines(),
        [
            "line 0",
            "line 1",
            "line 2",
            "line 3",
            "line 4",
            "deals 40/200",
            "balance 5"
        ]
    );

    // The emulator shows the fault being fixed: a line written past the
    // bars leaves a copy of them behind (and is itself wiped).
    let mut direct = term.clone();
    io::Write::write_all(&mut direct, b"direct\n").unwrap();
    mp.suspend(|| ());
    let lines = term.lines();
    assert_eq!(
        lines.iter().filter(|l| *l == "deals 40/200").count(),
        2,
        "{lines:?}"
    );
}

#[test]
fn lines_from_many_threads_come_out_whole_and_once_above_the_bars() {
    let term = Term::default();
    let (mp, deals, status) = two_bars(&term);
    let out = term.clone();
    let log = logger(&mp, move || out.clone());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (log, deals, status) = (log.clone(), deals.clone(), status.clone());
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&log, || {
                    for i in 0..50 {
                        deals.inc(1);
                        status.set_message(format!("balance {t}{i}"));
                        tracing::info!("thread {t} line {i} {}", "x".repeat(40));
                    }
                });
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    mp.suspend(|| ());

    // Each bar shows the last state it drew (updates are rate-limited).
    let lines = term.lines();
    let (logs, bars) = lines.split_at(lines.len() - 2);
    assert!(bars[0].starts_with("deals "), "{lines:?}");
    assert!(bars[1].starts_with("balance "), "{lines:?}");
    let mut logs = logs.to_vec();
    logs.sort();
    let mut want: Vec<String> = (0..4)
        .flat_map(|t| (0..50).map(move |i| format!("thread {t} line {i} {}", "x".repeat(40))))
        .collect();
    want.sort();
    assert_eq!(logs, want);
}

#[test]
fn without_a_terminal_lines_go_straight_out() {
    let mp = MultiProgress::with_draw_target(ProgressDrawTarget::hidden());
    let bar = mp.add(ProgressBar::new(10));
    bar.set_position(3);
    let sink = Arc::new(Mutex::new(Vec::<u8>::new()));
    let out = sink.clone();
    let log = logger(&mp, move || SinkWriter(out.clone()));
    tracing::dispatcher::with_default(&log, || {
        tracing::info!("one");
        tracing::warn!("two");
    });
    assert_eq!(
        String::from_utf8(sink.lock().unwrap().clone()).unwrap(),
        "one\ntwo\n"
    );
}

struct SinkWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for SinkWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
