//! A short run of every fuzz target (the `make fuzz` harness, 10 000 mutated inputs each): no
//! panic, no slow input, no input allocating over 64 MiB; every seed is accepted and some
//! mutated inputs are too, so the run reaches past the first length check.

use piecemeal::fuzzing::alloc::CountingAlloc;
use piecemeal::fuzzing::{Config, Kind, Target, fuzz, targets::TARGETS};
use std::time::Duration;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn config(dir: &std::path::Path) -> Config {
    Config {
        inputs: 10_000,
        seed: 0x5eed,
        crash_dir: dir.to_path_buf(),
        slow: Duration::from_secs(2),
        hang: Duration::from_secs(30),
        max_alloc: 64 << 20,
    }
}

/// The harness itself: a parser that panics on some inputs and one that allocates 100 MiB are
/// both reported, once per kind, with the first such input saved.
fn harness_reports_panics_and_huge_allocations(dir: &std::path::Path) {
    let broken = Target {
        name: "broken",
        seeds: || vec![b"d3:keyi5ee".to_vec()],
        run: |data| {
            assert!(!data.contains(&b'X'), "an X");
            if data.contains(&b'Y') {
                std::hint::black_box(vec![0u8; 100 << 20]);
            }
            true
        },
    };
    let report = fuzz(&broken, &config(dir));
    let panic = report
        .findings
        .iter()
        .find(|f| matches!(&f.kind, Kind::Panic(t) if t.contains("an X")));
    let panic = panic.unwrap_or_else(|| panic!("no panic finding: {}", report.summary()));
    assert!(panic.count > 1);
    assert!(
        std::fs::read(&panic.path)
            .expect("saved input")
            .contains(&b'X')
    );
    let huge = report
        .findings
        .iter()
        .find(|f| matches!(f.kind, Kind::Alloc(n) if n >= 100 << 20));
    let huge = huge.unwrap_or_else(|| panic!("no allocation finding: {}", report.summary()));
    assert!(
        std::fs::read(&huge.path)
            .expect("saved input")
            .contains(&b'Y')
    );
    assert_eq!(report.findings.len(), 2, "{}", report.summary());
}

/// One test, so no other test swaps the panic hook while the fuzzer has its own in place.
#[test]
fn every_target_survives_a_short_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    harness_reports_panics_and_huge_allocations(&dir.path().join("harness"));
    let config = config(dir.path());
    let mut failures = Vec::new();
    for target in TARGETS {
        let report = fuzz(target, &config);
        println!("{}", report.summary());
        assert_eq!(report.inputs, 10_000 + (target.seeds)().len() as u64);
        if !report.findings.is_empty() || report.seeds_rejected > 0 || report.accepted < 100 {
            failures.push(report.summary());
        }
    }
    if !failures.is_empty() {
        // Keep the saved inputs for whoever reads the failure.
        let kept = dir.keep();
        panic!(
            "fuzz findings (inputs kept in {}):\n{}",
            kept.display(),
            failures.join("\n")
        );
    }
}
