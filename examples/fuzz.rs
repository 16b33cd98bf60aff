//! `make fuzz`: structure-aware mutation fuzzing of every network parser (see
//! `piecemeal::fuzzing`). Usage: `fuzz [TARGET...]` (all targets when none is named).
//!
//! Environment: `FUZZ_INPUTS` (mutated inputs per target, default 10 000 000), `FUZZ_SEED`
//! (default 1), `FUZZ_CRASH_DIR` (default `$TMPDIR/piecemeal-fuzz-crashes`),
//! `FUZZ_MAX_ALLOC_MIB` (default 64). Exits 1 when any target has a finding.

use piecemeal::fuzzing::alloc::CountingAlloc;
use piecemeal::fuzzing::{Config, fuzz, targets};
use std::process::ExitCode;
use std::time::Duration;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// The number in environment variable `name`, `default` when unset; an error names the variable.
fn env_number(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(text) => text
            .trim()
            .replace('_', "")
            .parse()
            .map_err(|_| format!("{name}={text:?} is not a whole number")),
    }
}

fn main() -> ExitCode {
    let config = || -> Result<Config, String> {
        Ok(Config {
            inputs: env_number("FUZZ_INPUTS", 10_000_000)?,
            seed: env_number("FUZZ_SEED", 1)?,
            crash_dir: std::env::var_os("FUZZ_CRASH_DIR")
                .map(Into::into)
                .unwrap_or_else(|| std::env::temp_dir().join("piecemeal-fuzz-crashes")),
            slow: Duration::from_secs(1),
            hang: Duration::from_secs(20),
            max_alloc: (env_number("FUZZ_MAX_ALLOC_MIB", 64)? as usize) << 20,
        })
    };
    let config = match config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("fuzz: {e}");
            return ExitCode::from(2);
        }
    };
    let names: Vec<String> = std::env::args().skip(1).collect();
    let chosen: Vec<_> = if names.is_empty() {
        targets::TARGETS.iter().collect()
    } else {
        let mut chosen = Vec::new();
        for name in &names {
            match targets::target(name) {
                Some(t) => chosen.push(t),
                None => {
                    let known: Vec<_> = targets::TARGETS.iter().map(|t| t.name).collect();
                    eprintln!("fuzz: no target {name:?}; targets: {}", known.join(" "));
                    return ExitCode::from(2);
                }
            }
        }
        chosen
    };
    println!(
        "fuzzing {} target(s), {} mutated inputs each, seed {}, findings saved in {}",
        chosen.len(),
        config.inputs,
        config.seed,
        config.crash_dir.display()
    );
    let mut failed = false;
    for target in chosen {
        let report = fuzz(target, &config);
        println!("{}", report.summary());
        failed |= !report.findings.is_empty() || report.seeds_rejected > 0;
    }
    if failed {
        println!("fuzz: FAILED (findings above)");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
