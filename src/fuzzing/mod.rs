//! The fuzzer behind `make fuzz` and `tests/fuzz_smoke.rs` (hidden from the docs: not an API).
//!
//! No coverage-guided fuzzer runs on stable Rust here (cargo-fuzz needs nightly, cargo-afl an
//! AFL++ build), so this is structure-aware mutation from valid samples: each [`Target`] builds
//! seeds with our own encoders, the [`Mutator`](mutate::Mutator) stacks byte edits, length-field
//! and decimal edits, bencode/HTTP token inserts and splices on them, and inputs the parser
//! accepts join the corpus so later mutations start deeper. Each input runs in-process under
//! `catch_unwind` with a quiet panic hook, a time check and (with [`alloc::CountingAlloc`]
//! installed) an allocation check; a watchdog thread ends the process on a hang. Each kind of
//! finding is saved once to the crash folder with the number of inputs that hit it.
//!
//! Adding a parser is one row in [`targets::TARGETS`]: a name, a seed builder and a function
//! that feeds it one input.

pub mod alloc;
mod mse;
mod mse_initiator;
pub mod mutate;
mod seeds;
pub mod targets;

use std::cell::RefCell;
use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// One parser to fuzz.
pub struct Target {
    /// Short name, used in reports and crash file names.
    pub name: &'static str,
    /// Valid inputs built with our own encoders.
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Feeds one input to the parser; `true` when it was accepted (such inputs join the corpus).
    /// A panic, including a failed assertion about what the parser returned, is a crash.
    pub run: fn(&[u8]) -> bool,
}

/// How long and how strictly to fuzz.
#[derive(Clone, Debug)]
pub struct Config {
    /// Mutated inputs to run (the seeds run first, on top).
    pub inputs: u64,
    /// Seed of the mutator: the same seed gives the same inputs.
    pub seed: u64,
    /// Where findings are saved (created on the first one).
    pub crash_dir: PathBuf,
    /// An input taking longer than this (twice in a row) is a finding.
    pub slow: Duration,
    /// A run stuck on one input this long ends the process after saving it.
    pub hang: Duration,
    /// An input making more than this many bytes live at once is a finding.
    pub max_alloc: usize,
}

/// What went wrong with an input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// It panicked; the text is the panic's location and message.
    Panic(String),
    /// It took longer than [`Config::slow`].
    Slow(Duration),
    /// It made this many bytes live at once, over [`Config::max_alloc`].
    Alloc(usize),
}

/// One distinct finding: the first input that hit it and how many did.
#[derive(Debug)]
pub struct Finding {
    pub kind: Kind,
    pub path: PathBuf,
    pub count: u64,
}

/// The outcome of fuzzing one target.
#[derive(Debug)]
pub struct Report {
    pub name: &'static str,
    /// Inputs run, seeds included.
    pub inputs: u64,
    pub elapsed: Duration,
    /// Seeds the parser refused: a sign the seed builder, not the parser, is wrong.
    pub seeds_rejected: usize,
    /// Inputs the parser accepted.
    pub accepted: u64,
    pub findings: Vec<Finding>,
}

impl Report {
    /// Inputs per second over the run.
    pub fn per_second(&self) -> f64 {
        self.inputs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A human summary: one line, then one line per finding.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{:<14} {:>11} inputs {:>8.1} s {:>10.0} inputs/s  {:>5.1}% accepted  {} finding(s)",
            self.name,
            self.inputs,
            self.elapsed.as_secs_f64(),
            self.per_second(),
            100.0 * self.accepted as f64 / self.inputs.max(1) as f64,
            self.findings.len(),
        );
        for f in &self.findings {
            let _ = write!(
                out,
                "\n  {:?} ({} inputs): {}",
                f.kind,
                f.count,
                f.path.display()
            );
        }
        if self.seeds_rejected > 0 {
            let _ = write!(out, "\n  {} seed(s) rejected", self.seeds_rejected);
        }
        out
    }
}

thread_local! {
    /// The last panic on this thread, as `location: message`.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Fuzzes one target; findings are saved under `config.crash_dir`. Panics if
/// [`alloc::CountingAlloc`] is not the global allocator (the allocation check would be blind).
pub fn fuzz(target: &Target, config: &Config) -> Report {
    assert!(
        alloc::installed(),
        "install fuzzing::alloc::CountingAlloc as #[global_allocator]"
    );
    let previous_hook = panic::take_hook();
    panic::set_hook(Box::new(|info| {
        let text = match info.location() {
            Some(at) => format!(
                "{}:{}: {}",
                at.file(),
                at.line(),
                info.payload_as_str().unwrap_or("")
            ),
            None => info.payload_as_str().unwrap_or("").to_string(),
        };
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(text));
    }));
    let watch = Watchdog::start(target.name, config);
    let report = Run::new(target, config, &watch).go();
    watch.stop();
    panic::set_hook(previous_hook);
    report
}

/// The fuzzing loop's state.
struct Run<'a> {
    target: &'a Target,
    config: &'a Config,
    watch: &'a Watchdog,
    report: Report,
}

/// Most corpus entries kept; past it accepted inputs replace random entries now and then.
const MAX_CORPUS: usize = 4096;

impl<'a> Run<'a> {
    fn new(target: &'a Target, config: &'a Config, watch: &'a Watchdog) -> Run<'a> {
        let report = Report {
            name: target.name,
            inputs: 0,
            elapsed: Duration::ZERO,
            seeds_rejected: 0,
            accepted: 0,
            findings: Vec::new(),
        };
        Run {
            target,
            config,
            watch,
            report,
        }
    }

    fn go(mut self) -> Report {
        let start = Instant::now();
        let mut corpus = (self.target.seeds)();
        assert!(!corpus.is_empty(), "{} has no seeds", self.target.name);
        for seed in corpus.clone() {
            if !self.one(&seed) {
                self.report.seeds_rejected += 1;
            }
        }
        let mut mutator = mutate::Mutator::new(self.config.seed);
        let mut input = Vec::new();
        for _ in 0..self.config.inputs {
            let base = mutator.rng().usize(..corpus.len());
            let other = mutator.rng().usize(..corpus.len());
            mutator.mutate(&corpus[base], &corpus[other], &mut input);
            if self.one(&input) {
                if corpus.len() < MAX_CORPUS {
                    corpus.push(input.clone());
                } else if mutator.rng().u8(..16) == 0 {
                    let slot = mutator.rng().usize(..corpus.len());
                    corpus[slot].clone_from(&input);
                }
            }
        }
        self.report.elapsed = start.elapsed();
        self.report
    }

    /// Runs one input with the checks; returns whether the parser accepted it.
    fn one(&mut self, input: &[u8]) -> bool {
        self.watch.now_running(input);
        self.report.inputs += 1;
        let base = alloc::reset_peak();
        let start = Instant::now();
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| (self.target.run)(input)));
        let took = start.elapsed();
        let allocated = alloc::peak().saturating_sub(base);
        let accepted = match outcome {
            Ok(accepted) => accepted,
            Err(_) => {
                let text = LAST_PANIC
                    .with(|p| p.borrow_mut().take())
                    .unwrap_or_default();
                self.found(Kind::Panic(text), input);
                false
            }
        };
        if took > self.config.slow {
            // Once more, so a pause of the whole machine is not blamed on the input.
            let again = Instant::now();
            let _ = panic::catch_unwind(AssertUnwindSafe(|| (self.target.run)(input)));
            if again.elapsed() > self.config.slow {
                self.found(Kind::Slow(took), input);
            }
        }
        if allocated > self.config.max_alloc {
            self.found(Kind::Alloc(allocated), input);
        }
        self.report.accepted += u64::from(accepted);
        accepted
    }

    /// Counts a finding, saving the input when it is the first of its kind.
    fn found(&mut self, kind: Kind, input: &[u8]) {
        let same = |k: &Kind| match (k, &kind) {
            (Kind::Panic(a), Kind::Panic(b)) => panic_site(a) == panic_site(b),
            (Kind::Slow(_), Kind::Slow(_)) | (Kind::Alloc(_), Kind::Alloc(_)) => true,
            _ => false,
        };
        if let Some(f) = self.report.findings.iter_mut().find(|f| same(&f.kind)) {
            f.count += 1;
            return;
        }
        let path = save(&self.config.crash_dir, self.target.name, input);
        self.report.findings.push(Finding {
            kind,
            path,
            count: 1,
        });
    }
}

/// The `file:line` a panic text starts with: panics at one site are one finding.
fn panic_site(text: &str) -> &str {
    text.splitn(3, ':')
        .take(2)
        .map(str::len)
        .sum::<usize>()
        .checked_add(1)
        .and_then(|n| text.get(..n))
        .unwrap_or(text)
}

/// Writes `input` to `<dir>/<target>-<hash>.bin`, returning the path (or where it should have
/// gone, with the error in the name, when the folder is not writable).
fn save(dir: &Path, target: &str, input: &[u8]) -> PathBuf {
    // FNV-1a: a stable name, so the same input found again lands in the same file.
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let path = dir.join(format!("{target}-{hash:016x}.bin"));
    match std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, input)) {
        Ok(()) => path,
        Err(e) => PathBuf::from(format!("{} (not saved: {e})", path.display())),
    }
}

/// A thread that saves the input being run and ends the process when one input runs too long.
struct Watchdog {
    current: Arc<Mutex<(u64, Vec<u8>)>>,
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Watchdog {
    fn start(name: &'static str, config: &Config) -> Watchdog {
        let current = Arc::new(Mutex::new((0u64, Vec::new())));
        let (stop, stopped) = mpsc::channel::<()>();
        let (shared, dir, hang) = (Arc::clone(&current), config.crash_dir.clone(), config.hang);
        let thread = std::thread::spawn(move || {
            let (mut last, mut since) = (u64::MAX, Instant::now());
            while let Err(mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(Duration::from_millis(200))
            {
                let guard = crate::lock::lock(&shared);
                if guard.0 != last {
                    (last, since) = (guard.0, Instant::now());
                } else if since.elapsed() > hang {
                    let path = save(&dir, name, &guard.1);
                    eprintln!(
                        "{name}: one input ran over {hang:?} (hang): {}",
                        path.display()
                    );
                    std::process::exit(2);
                }
            }
        });
        Watchdog {
            current,
            stop,
            thread,
        }
    }

    fn now_running(&self, input: &[u8]) {
        let mut guard = crate::lock::lock(&self.current);
        guard.0 += 1;
        guard.1.clear();
        guard.1.extend_from_slice(input);
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_site_is_file_and_line() {
        assert_eq!(panic_site("src/a.rs:12: boom"), "src/a.rs:12");
        assert_eq!(panic_site("no location"), "no location");
    }
}
