//! What every case test does: run the case through the `sockconf` binary (the test thread never
//! forks; the runner process does) and turn its verdict into the test's outcome.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use harness::report::{RunReport, Verdict};
use std::process::Command;

/// Set to 1 to let skipped cases pass as tests (on a machine that cannot isolate cases, say).
/// Without it a skip fails the test: a skip is never silently a pass.
pub const ALLOW_SKIP_ENV: &str = "SOCKCONF_ALLOW_SKIP";

/// The built CLI, as Cargo gives it to integration tests. It is sent SIGTERM when the test
/// process ends (PR_SET_PDEATHSIG; the test's thread waits for it, so outlives it): a test run
/// that is interrupted or killed takes its `sockconf` along, which ends its runners and removes
/// its unfinished outputs as on any SIGTERM.
#[rstest::fixture]
pub fn sockconf() -> Command {
    let mut sockconf = Command::new(env!("CARGO_BIN_EXE_sockconf"));
    harness::spawn::parent_death::command_ends_with_parent(
        &mut sockconf,
        nix::sys::signal::Signal::SIGTERM,
    );
    sockconf
}

/// Run case `id` and panic with the difference unless it passed.
pub fn check(mut sockconf: Command, id: &str) {
    let out = sockconf
        .args(["run", id, "--format", "json"])
        .output()
        .expect("start sockconf");
    let report: RunReport = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{id}: no report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let case = report
        .cases
        .iter()
        .find(|c| c.id == id)
        .expect("the case is in its report");
    let observed = serde_json::to_string_pretty(&case.observations).unwrap_or_default();
    match case.verdict {
        Verdict::Pass => {}
        Verdict::Skip if std::env::var(ALLOW_SKIP_ENV).as_deref() == Ok("1") => {
            eprintln!(
                "{id}: SKIPPED (allowed by {ALLOW_SKIP_ENV}=1): {}",
                case.why().join("; ")
            );
        }
        Verdict::Skip => panic!(
            "{id} was skipped, which is not a pass: {}\n(set {ALLOW_SKIP_ENV}=1 to accept skips)",
            case.why().join("; ")
        ),
        Verdict::Fail | Verdict::Timeout => panic!(
            "{id}: {}\n  {}\nobserved: {observed}",
            case.verdict.name(),
            case.why().join("\n  ")
        ),
    }
}

/// One test per case, in a module named after the family, so that the test's path mirrors the
/// case id: `close::fin_then_eof` runs `close.fin_then_eof`.
#[macro_export]
macro_rules! case_tests {
    ($family:ident: $($(#[$attr:meta])* $behaviour:ident),* $(,)?) => {
        mod $family {
            use super::common::{check, sockconf};
            use rstest::rstest;
            use std::process::Command;
            $(
                $(#[$attr])*
                #[rstest]
                fn $behaviour(sockconf: Command) {
                    check(sockconf, concat!(stringify!($family), ".", stringify!($behaviour)));
                }
            )*
        }
    };
}
