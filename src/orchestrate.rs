//! `sockconf run`: start one runner process per case (several at once: each has its own
//! network namespace), collect their reports, print them.

use crate::{render, Format};
use harness::report::{
    CaseReport, Environment, Isolation, RunReport, Sides, Summary, Verdict, SCHEMA_VERSION,
};
use harness::Case;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// A runner that outlives every step deadline is a harness bug; SIGALRM ends it.
const RUNNER_BACKSTOP_SECS: u32 = 120;

/// `sockconf run-case ID`: run one case in this fresh, single-threaded process and print its
/// report as JSON.
pub fn run_case_here(case: &Case) -> ExitCode {
    // SAFETY: alarm() has no memory effects; SIGALRM's default action ends this process.
    unsafe { libc::alarm(RUNNER_BACKSTOP_SECS) };
    let report = harness::spawn::run_case(case);
    println!(
        "{}",
        serde_json::to_string(&report).expect("reports serialise")
    );
    ExitCode::SUCCESS
}

/// Run `selected` and print the outcome; exit 0 when nothing failed or timed out, else 1.
pub fn run(selected: &[&'static Case], format: Format, jobs: Option<usize>) -> ExitCode {
    let environment_before = Environment::here(vec![]);
    let cases = run_all(selected, jobs);
    let mut isolation: Vec<String> = cases
        .iter()
        .map(|c| c.isolation.name().to_string())
        .collect();
    isolation.sort();
    isolation.dedup();
    let report = RunReport {
        schema_version: SCHEMA_VERSION,
        environment: Environment {
            isolation,
            ..environment_before
        },
        summary: Summary::of(&cases),
        cases,
    };
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("reports serialise")
        ),
        Format::Text => print!("{}", render::text(&report)),
    }
    if report.summary.failed + report.summary.timeout > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Cases run at once per core, unless `--jobs` says otherwise. Cases mostly wait (linger and
/// retransmission timers, barriers) and cost the harness about 3 ms each, so far more run at
/// once than there are cores. `make bench` on 2 cores shared with other work (load 15), the
/// catalogue x3 (69 cases, 6 of them waiting 1 s), wall time / longest case: 2.56 at 4 jobs,
/// 1.58 at 8, 1.25 at 16, 1.18 at 32, 1.09 at 64 (but 1536 ms wall there). Past 16 the wall
/// time hardly moves while contention stretches every case: the summed case time goes from
/// 10.8 s at 16 jobs to 15.9 s at 32 and 26.9 s at 64, eating into the timing tolerances.
const JOBS_PER_CORE: usize = 8;

/// How many cases run at once by default: [`JOBS_PER_CORE`] per core, no more than there are
/// cases.
pub fn default_jobs(cases: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores * JOBS_PER_CORE).clamp(1, cases.max(1))
}

pub(crate) fn run_all(selected: &[&'static Case], jobs: Option<usize>) -> Vec<CaseReport> {
    let jobs = jobs
        .unwrap_or_else(|| default_jobs(selected.len()))
        .clamp(1, selected.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<CaseReport>>> = Mutex::new(vec![None; selected.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = selected.get(i) else { break };
                let report = run_in_runner(case);
                results.lock().expect("no worker panics")[i] = Some(report);
            });
        }
    });
    results
        .into_inner()
        .expect("no worker panics")
        .into_iter()
        .flatten()
        .collect()
}

/// Start `sockconf run-case ID` and read its report. A runner that dies without one is
/// reported as the case's failure, with how it died.
pub(crate) fn run_in_runner(case: &Case) -> CaseReport {
    let exe = std::env::current_exe().expect("own path");
    let started = std::time::Instant::now();
    let output = Command::new(exe)
        .args(["run-case", case.id])
        .stdin(Stdio::null())
        .output();
    let failure = |detail: String| CaseReport {
        id: case.id.to_string(),
        verdict: Verdict::Fail,
        detail: vec![detail],
        duration_ms: started.elapsed().as_millis() as u64,
        isolation: Isolation::Host {
            why: "runner failed".into(),
        },
        observations: Sides::default(),
        expectation: None,
    };
    match output {
        Err(e) => failure(format!("harness: cannot start the runner: {e}")),
        Ok(out) => match serde_json::from_slice::<CaseReport>(&out.stdout) {
            Ok(mut report) => {
                if report.verdict == Verdict::Timeout {
                    report.detail.insert(0, "step deadline missed".into());
                }
                report
            }
            Err(_) if out.status.code().is_none() => {
                let mut r = failure(format!(
                    "harness: the runner was killed ({:?}) after {} s; stderr: {}",
                    out.status,
                    started.elapsed().as_secs(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
                r.verdict = Verdict::Timeout;
                r
            }
            Err(_) => failure(format!(
                "harness: the runner gave no report ({}); stderr: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        },
    }
}
