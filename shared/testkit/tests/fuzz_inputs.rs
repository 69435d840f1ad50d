//! Every input kept for the fuzz targets — the seed corpus (`fuzz/seeds/<target>`) and each
//! input that once broke a check (`fuzz/regressions/<target>`) — through the same checks
//! the fuzzers run (`wxbridge_testkit::fuzz`), on the stable toolchain.

use std::path::{Path, PathBuf};
use wxbridge_testkit::fuzz::TARGETS;

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&folder) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a readable folder").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn replay(kind: &str) -> usize {
    let mut replayed = 0;
    for (target, check) in TARGETS {
        for file in inputs(kind, target) {
            let data = std::fs::read(&file).expect("a readable input");
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(
                outcome.is_ok(),
                "{target}: {} breaks its check",
                file.display()
            );
            replayed += 1;
        }
    }
    replayed
}

#[test]
fn every_seed_passes_its_check() {
    // Seeds exist for every target: a missing folder would make this test pass on nothing.
    for (target, _) in TARGETS {
        assert!(!inputs("seeds", target).is_empty(), "no seeds for {target}");
    }
    assert!(replay("seeds") >= TARGETS.len());
}

#[test]
fn every_input_that_once_broke_a_check_passes_it_now() {
    replay("regressions");
}
