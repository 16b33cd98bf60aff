//! What a running peer shows the user: a live bar per torrent on a terminal (percent, speed,
//! ETA, peers), plain status lines every few seconds otherwise. Both go to stdout.

use crate::peer::torrent_state::TorrentState;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often a plain status line is printed while something downloads.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// The progress display of one peer process.
pub struct Progress {
    bars: Option<(MultiProgress, Vec<ProgressBar>)>,
    last_plain: Instant,
    /// Downloaded bytes at the last plain line, for its speed figure.
    last_bytes: Vec<u64>,
}

impl Progress {
    /// Bars when `bars` is set (stdout is a terminal), plain lines otherwise.
    pub fn new(torrents: &[Arc<TorrentState>], bars: bool) -> Progress {
        let bars = bars.then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
            let style = ProgressStyle::with_template(
                "{prefix:24!} [{bar:30}] {percent:>3}% {binary_bytes_per_sec:>12} ETA {eta:>4} {msg}",
            )
            .expect("the template is valid")
            .progress_chars("=> ");
            let list = torrents
                .iter()
                .map(|t| {
                    let (done, wanted) = t.wanted_progress();
                    let bar = multi.add(ProgressBar::new(wanted));
                    bar.set_style(style.clone());
                    bar.set_prefix(t.meta.info.name.clone());
                    bar.set_position(done);
                    bar.reset_eta();
                    bar
                })
                .collect();
            (multi, list)
        });
        Progress {
            bars,
            last_plain: Instant::now(),
            last_bytes: vec![0; torrents.len()],
        }
    }

    /// Refreshes the bars, or prints plain lines when their time has come.
    pub fn update(&mut self, torrents: &[Arc<TorrentState>]) {
        if let Some((_, bars)) = &self.bars {
            for (t, bar) in torrents.iter().zip(bars) {
                bar.set_position(t.wanted_progress().0);
                bar.set_message(format!("{} peers", t.connections.load(Ordering::Relaxed)));
            }
            return;
        }
        let elapsed = self.last_plain.elapsed();
        if elapsed < PLAIN_EVERY {
            return;
        }
        self.last_plain = Instant::now();
        for (t, last) in torrents.iter().zip(&mut self.last_bytes) {
            let bytes = t.downloaded.load(Ordering::Relaxed);
            if t.is_downloading() {
                // A selective download measures the bytes it wants, not the whole torrent.
                let (done, wanted) = t.wanted_progress();
                println!(
                    "{}: {:.1}% of {} bytes, {:.1} MB/s, {} peers",
                    t.meta.info.name,
                    done as f64 * 100.0 / wanted.max(1) as f64,
                    wanted,
                    (bytes - *last) as f64 / 1e6 / elapsed.as_secs_f64(),
                    t.connections.load(Ordering::Relaxed)
                );
            }
            *last = bytes;
        }
    }

    /// Prints a line above the bars (or plainly).
    pub fn println(&self, line: &str) {
        match &self.bars {
            Some((multi, _)) => {
                let _ = multi.println(line);
            }
            None => println!("{line}"),
        }
    }

    /// Takes the bars off the screen; the `complete` lines printed above them stay.
    pub fn finish(&self) {
        if let Some((_, bars)) = &self.bars {
            for bar in bars {
                bar.finish_and_clear();
            }
        }
    }
}
