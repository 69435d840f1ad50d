//! Instructions per opened push, counted by valgrind's callgrind, beside the floor's: a
//! figure that does not move with the machine's load, so a regression shows as a number.
//!
//! `cargo bench --bench instructions` re-runs this binary under callgrind, once with one
//! round and once with `ROUNDS + 1`, and reports the difference per round (set-up and
//! valgrind's own start cancel out). The CPU valgrind emulates lacks AVX-512 and SHA-NI, so
//! the counts are those of the portable code paths, the same for both sides of the ratio.
#![allow(clippy::unwrap_used, reason = "a benchmark: a panic is a failed run")]

mod common;

use common::{cases, FLOOR_PARTS, FRESHNESS};
use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use wxbridge_wechat::callback::open_push;

const ROUNDS: u64 = 1000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, format, what, rounds] = args.as_slice() {
        if flag == "--count" {
            return run(format, what, rounds.parse().expect("rounds"));
        }
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!(
            "valgrind is not installed: instruction counts skipped (apt-get install valgrind)"
        );
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    println!("instructions per push (callgrind, {ROUNDS} rounds, portable code paths)");
    println!(
        "{:<8}{:>12}{:>10}{:>9}",
        "format", "open_push", "floor", "x floor"
    );
    for format in ["xml", "json"] {
        let open = per_round(&exe, format, "open_push");
        let floor = per_round(&exe, format, "floor");
        println!(
            "{format:<8}{open:>12}{floor:>10}{:>8.2}x",
            open as f64 / floor as f64
        );
    }
}

/// Opens the push (or runs the floor's primitives) `rounds` times.
fn run(format: &str, what: &str, rounds: u64) {
    let case = cases()
        .into_iter()
        .find(|case| case.format == format)
        .expect("format");
    let mut floor = case.floor();
    for _ in 0..rounds {
        match what {
            "open_push" => {
                open_push(
                    &case.channel,
                    black_box(&case.query),
                    black_box(case.push.body.as_bytes()),
                    FRESHNESS,
                )
                .expect("opens");
            }
            _ => {
                for part in FLOOR_PARTS {
                    black_box(floor.run(part));
                }
            }
        }
    }
}

fn per_round(exe: &Path, format: &str, what: &str) -> u64 {
    let count = |rounds: u64| instructions(exe, format, what, rounds);
    (count(ROUNDS + 1) - count(1)) / ROUNDS
}

/// Total instructions of one run, from callgrind's output file.
fn instructions(exe: &Path, format: &str, what: &str, rounds: u64) -> u64 {
    let out = std::env::temp_dir().join(format!(
        "wxbridge-callgrind-{}-{format}-{what}-{rounds}",
        std::process::id()
    ));
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(exe)
        .args(["--count", format, what, &rounds.to_string()])
        .output()
        .expect("valgrind runs");
    assert!(
        status.status.success(),
        "callgrind failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let text = std::fs::read_to_string(&out).expect("callgrind output");
    let _ = std::fs::remove_file(&out);
    text.lines()
        .find_map(|line| {
            line.strip_prefix("summary: ")
                .or(line.strip_prefix("totals: "))
        })
        .and_then(|n| n.trim().parse().ok())
        .expect("callgrind summary line")
}
