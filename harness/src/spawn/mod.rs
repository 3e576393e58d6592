//! Spawn and isolate: one case, start to verdict, inside the current (fresh, single-threaded)
//! process.

pub mod isolate;
pub mod netdev;
mod pair;
mod side;
mod variants;

use crate::case::{Case, Need};
use crate::judge::{diff_side, Expect};
use crate::platform::{kernel_release, parse_release, Os};
use crate::report::{CaseReport, Isolation, Sides, Verdict};
use std::time::Instant;

/// Run `case` in this process: check its needs, isolate, write its sysctls, fork the pair,
/// judge. The process should exit afterwards: it has left the host's network namespace.
pub fn run_case(case: &Case) -> CaseReport {
    let start = Instant::now();
    let mut report = CaseReport {
        id: case.id.to_string(),
        verdict: Verdict::Skip,
        detail: vec![],
        duration_ms: 0,
        isolation: Isolation::Host {
            why: "not isolated yet".into(),
        },
        observations: Sides::default(),
        expectation: None,
    };
    let finish = |mut r: CaseReport, verdict: Verdict, detail: Vec<String>| {
        r.verdict = verdict;
        r.detail = detail;
        r.duration_ms = start.elapsed().as_millis() as u64;
        r
    };

    let os = Os::current();
    if let Some(reason) = unmet_os_need(case, os) {
        return finish(report, Verdict::Skip, vec![reason]);
    }
    let release = kernel_release();
    let expect = Expect::select(case.expect, os, parse_release(&release));
    report.expectation = expect.map(Into::into);

    let outcome = if case.variants.is_empty() {
        prepare(case.needs.iter()).map(|isolation| (isolation, pair::run_pair(case, None)))
    } else {
        variants::run_variants(case)
    };
    let outcome = match outcome {
        Ok((isolation, outcome)) => {
            report.isolation = isolation;
            outcome
        }
        Err((isolation, reason)) => {
            report.isolation = isolation;
            return finish(report, Verdict::Skip, vec![reason]);
        }
    };
    report.observations = Sides {
        server: outcome.server,
        client: outcome.client,
    };

    if !outcome.errors.is_empty() {
        return finish(report, Verdict::Fail, outcome.errors);
    }
    if let Some(hung) = outcome.timeout {
        return finish(report, Verdict::Timeout, hung);
    }
    let Some(expect) = expect else {
        let reason = format!("no expectation has been confirmed on {} {release} yet; the observations are reported unjudged", os.name());
        return finish(report, Verdict::Skip, vec![reason]);
    };
    let mut diffs = diff_side("server", &report.observations.server, expect.server);
    diffs.extend(diff_side(
        "client",
        &report.observations.client,
        expect.client,
    ));
    if diffs.is_empty() {
        finish(report, Verdict::Pass, vec![])
    } else {
        finish(report, Verdict::Fail, diffs)
    }
}

fn unmet_os_need(case: &Case, os: Os) -> Option<String> {
    case.needs.iter().find_map(|need| match *need {
        Need::NotOn(not, why) if not == os => Some(why.to_string()),
        Need::OnlyOn(only, why) if only != os => Some(why.to_string()),
        Need::SockDiag if os != Os::Linux => Some(format!(
            "needs sock_diag to list sockets no process holds (TIME_WAIT, orphans), and {} has none",
            os.name()
        )),
        _ => None,
    })
}

/// Isolate this (single-threaded) process and write the sysctls of `needs` in its namespace.
/// The isolation had, and on an unmet need the skip reason with it.
fn prepare<'a>(needs: impl Iterator<Item = &'a Need>) -> Result<Isolation, (Isolation, String)> {
    let isolation = isolate::isolate();
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with integer arguments: orphans of the sides come to us to be reaped.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
    for need in needs {
        let unmet = match (need, &isolation) {
            (Need::Sysctl(path, value), Isolation::Host { why }) => Some(format!("needs sysctl {path}={value}, which is only written inside a private network namespace, and there is none ({why})")),
            (Need::Sysctl(path, value), _) => isolate::write_sysctl(path, value).err().map(|e| {
                format!("cannot set sysctl {path}={value} in the case's namespace: {e}")
            }),
            (Need::Netns(reason), Isolation::Host { why }) => Some(format!(
                "needs a private network namespace ({reason}), and there is none ({why})"
            )),
            _ => None,
        };
        if let Some(reason) = unmet {
            return Err((isolation, reason));
        }
    }
    Ok(isolation)
}
