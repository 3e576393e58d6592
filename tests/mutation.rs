//! The cases can fail: under a shim that turns every close() into an abortive one (RST instead
//! of FIN), the cases about orderly closes go red, and the ones that do not close explicitly
//! stay green. Linux only: it preloads a shared object built with the system's C compiler.
#![cfg(target_os = "linux")]

mod common;

use common::sockconf;
use harness::report::{RunReport, Verdict};
use rstest::rstest;
use std::process::Command;

/// Build tests/shims/abortive_close.c into a temporary shared object.
fn build_shim() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sockconf-shim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = dir.join("abortive_close.so");
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/shims/abortive_close.c");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&out)
        .arg(src)
        .arg("-ldl")
        .status()
        .expect("the mutation test needs a C compiler (cc) to build its shim");
    assert!(status.success(), "cc failed to build the shim");
    out
}

#[rstest]
fn abortive_close_shim_turns_orderly_close_cases_red(mut sockconf: Command) {
    let shim = build_shim();
    let out = sockconf
        .env("LD_PRELOAD", &shim)
        .args(["run", "close", "shutdown", "--format", "json"])
        .output()
        .expect("run sockconf");
    let _ = std::fs::remove_dir_all(shim.parent().expect("temp dir"));
    let report: RunReport = serde_json::from_slice(&out.stdout).expect("a run report");
    let verdict = |id: &str| report.cases.iter().find(|c| c.id == id).map(|c| c.verdict);
    // An explicit close() now sends RST: the peer reads ECONNRESET instead of EOF.
    for id in [
        "close.fin_then_eof",
        "close.peer_writes_after_close",
        "shutdown.wr_half_close",
    ] {
        assert_eq!(
            verdict(id),
            Some(Verdict::Fail),
            "{id} must go red under the shim"
        );
    }
    // The wire shows it too: no FIN, a RST (where the segments could be captured).
    let fin_then_eof = report.cases.iter().find(|c| c.id == "close.fin_then_eof");
    if let Some(case) = fin_then_eof.filter(|c| c.segments.is_some()) {
        assert!(
            case.failure
                .iter()
                .any(|l| l.starts_with("wire: expected client sends 0 RST")),
            "{:?}",
            case.failure
        );
    }
    // Closing at exit or by SIGKILL is the kernel's, not libc's; an abort is already an abort.
    // (Cases whose peer keeps working after the other side's script ends are left out: under the
    // shim, that side's implicit close races with them.)
    for id in [
        "close.exit_sends_fin",
        "close.kill_sends_fin",
        "close.read_after_reset",
    ] {
        assert_eq!(
            verdict(id),
            Some(Verdict::Pass),
            "{id} must stay green under the shim"
        );
    }
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed case makes `run` exit 1"
    );
}
