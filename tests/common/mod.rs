//! What every case test does: run the case through the `sockconf` binary (the test thread never
//! forks; the runner process does) and turn its verdict into the test's outcome. The tests are
//! tests/cases.rs's, one per case of the catalogue.

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

/// Set to 1 on a throwaway machine (a CI VM) to let the cases that need a host-wide sysctl
/// (macOS, FreeBSD: no namespaces) change it for their run: `sockconf run --allow-host-sysctl`.
/// Without it those cases are skipped, and the host is never changed.
pub const ALLOW_HOST_SYSCTL_ENV: &str = "SOCKCONF_ALLOW_HOST_SYSCTL";

/// Run case `id`; the difference, or why it did not run, unless it passed.
pub fn check(mut sockconf: Command, id: &str) -> Result<(), String> {
    sockconf.args(["run", id, "--format", "json"]);
    if std::env::var(ALLOW_HOST_SYSCTL_ENV).as_deref() == Ok("1") {
        sockconf.arg("--allow-host-sysctl");
    }
    let out = sockconf
        .output()
        .map_err(|e| format!("{id}: cannot start sockconf: {e}"))?;
    let report: RunReport = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "{id}: no report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let case = report
        .cases
        .iter()
        .find(|c| c.instance() == id)
        .ok_or_else(|| format!("{id} is not in its report"))?;
    let observed = serde_json::to_string_pretty(&case.observations).unwrap_or_default();
    match case.verdict {
        Verdict::Pass => Ok(()),
        Verdict::Skip if std::env::var(ALLOW_SKIP_ENV).as_deref() == Ok("1") => {
            eprintln!(
                "{id}: SKIPPED (allowed by {ALLOW_SKIP_ENV}=1): {}",
                case.why().join("; ")
            );
            Ok(())
        }
        Verdict::Skip => Err(format!(
            "{id} was skipped, which is not a pass: {}\n(set {ALLOW_SKIP_ENV}=1 to accept skips)",
            case.why().join("; ")
        )),
        Verdict::Fail | Verdict::Timeout => Err(format!(
            "{id}: {}\n  {}\nobserved: {observed}",
            case.verdict.name(),
            case.why().join("\n  ")
        )),
    }
}
