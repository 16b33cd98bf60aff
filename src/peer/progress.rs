//! What a running peer shows the user: a live bar per torrent on a terminal (percent, speed,
//! ETA, peers), plain status lines every few seconds otherwise. Both go to stdout.

use crate::metainfo::InfoHash;
use crate::peer::torrent_state::TorrentState;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often a plain status line is printed while something downloads.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// The progress display of one peer process.
pub struct Progress {
    bars: Option<(MultiProgress, ProgressStyle)>,
    /// Per torrent shown: its bar (when drawing bars) and its downloaded bytes at the last
    /// plain line, for its speed figure.
    shown: HashMap<InfoHash, (Option<ProgressBar>, u64)>,
    last_plain: Instant,
}

impl Progress {
    /// Bars when `bars` is set (stdout is a terminal), plain lines otherwise.
    pub fn new(bars: bool) -> Progress {
        let bars = bars.then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
            let style = ProgressStyle::with_template(
                "{prefix:24!} [{bar:30}] {percent:>3}% {binary_bytes_per_sec:>12} ETA {eta:>4} {msg}",
            )
            .expect("the template is valid")
            .progress_chars("=> ");
            (multi, style)
        });
        Progress {
            bars,
            shown: HashMap::new(),
            last_plain: Instant::now(),
        }
    }

    /// Refreshes the bars, or prints plain lines when their time has come. `torrents` are
    /// those running now: a bar comes for a new one and goes with one that stopped.
    pub fn update(&mut self, torrents: &[Arc<TorrentState>]) {
        self.shown.retain(|hash, (bar, _)| {
            let running = torrents.iter().any(|t| t.meta.info_hash == *hash);
            if let (false, Some(bar)) = (running, bar) {
                bar.finish_and_clear();
            }
            running
        });
        for t in torrents {
            let bars = &self.bars;
            self.shown.entry(t.meta.info_hash).or_insert_with(|| {
                let bar = bars.as_ref().map(|(multi, style)| {
                    let (done, wanted) = t.wanted_progress();
                    let bar = multi.add(ProgressBar::new(wanted));
                    bar.set_style(style.clone());
                    bar.set_prefix(t.meta.info.name.clone());
                    bar.set_position(done);
                    bar.reset_eta();
                    bar
                });
                (bar, t.downloaded.load(Ordering::Relaxed))
            });
        }
        if self.bars.is_some() {
            for t in torrents {
                if let Some((Some(bar), _)) = self.shown.get(&t.meta.info_hash) {
                    bar.set_position(t.wanted_progress().0);
                    bar.set_message(format!("{} peers", t.connections.load(Ordering::Relaxed)));
                }
            }
            return;
        }
        let elapsed = self.last_plain.elapsed();
        if elapsed < PLAIN_EVERY {
            return;
        }
        self.last_plain = Instant::now();
        for t in torrents {
            let Some((_, last)) = self.shown.get_mut(&t.meta.info_hash) else {
                continue;
            };
            let bytes = t.downloaded.load(Ordering::Relaxed);
            if t.is_downloading() {
                // A selective download measures the bytes it wants, not the whole torrent.
                let (done, wanted) = t.wanted_progress();
                println!(
                    "{}: {:.1}% of {} bytes, {:.1} MB/s, {} peers",
                    t.meta.info.name,
                    done as f64 * 100.0 / wanted.max(1) as f64,
                    wanted,
                    bytes.saturating_sub(*last) as f64 / 1e6 / elapsed.as_secs_f64(),
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
        for (bar, _) in self.shown.values() {
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
        }
    }
}
