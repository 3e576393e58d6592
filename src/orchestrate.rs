//! `sockconf run`: start one runner process per case (several at once: each has its own
//! network namespace), collect their reports, print them.

use crate::{render, Format};
use harness::report::{
    CaseReport, Environment, RunReport, Sides, Summary, Verdict, SCHEMA_VERSION,
};
use harness::Case;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// A runner that outlives every step deadline is a harness bug; SIGALRM ends it.
const RUNNER_BACKSTOP_SECS: u32 = 120;

/// How `sockconf run` runs and shows the cases.
pub struct Options {
    pub format: Format,
    pub jobs: Option<usize>,
    /// Draw each case's ladder.
    pub verbose: bool,
    /// Where each case's pcap file goes.
    pub pcap: Option<PathBuf>,
}

/// `sockconf run-case ID`: run one case in this fresh, single-threaded process and print its
/// report as JSON; with `pcap`, also write its capture to `pcap/<id>.pcap`.
pub fn run_case_here(case: &Case, pcap: Option<&Path>) -> ExitCode {
    // SAFETY: alarm() has no memory effects; SIGALRM's default action ends this process.
    unsafe { libc::alarm(RUNNER_BACKSTOP_SECS) };
    let harness::spawn::CaseRun {
        mut report,
        capture,
    } = harness::spawn::run_case_capturing(case);
    if let (Some(dir), Some(capture)) = (pcap, &capture) {
        let path = dir.join(format!("{}.pcap", case.id));
        if let Err(e) = harness::observe::capture::write_pcap(&path, capture.frames()) {
            report
                .detail
                .push(format!("cannot write {}: {e}", path.display()));
        }
    }
    println!(
        "{}",
        serde_json::to_string(&report).expect("reports serialise")
    );
    // Hand the report over (EOF on our stdout and stderr) before the capture's slow close,
    // so that `sockconf run` can go on while this process finishes.
    let _ = std::io::stdout().flush();
    // SAFETY: closing our own standard descriptors; nothing writes to them after this.
    unsafe {
        libc::close(libc::STDOUT_FILENO);
        libc::close(libc::STDERR_FILENO);
    }
    drop(capture);
    ExitCode::SUCCESS
}

/// Run `selected` and print the outcome; exit 0 when nothing failed or timed out, else 1.
pub fn run(selected: &[&'static Case], options: &Options) -> ExitCode {
    let environment_before = Environment::here(vec![]);
    if let Some(dir) = &options.pcap {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("sockconf: cannot create {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    }
    let cases = run_all(selected, options.jobs, options.pcap.as_deref());
    let mut isolation: Vec<String> = cases
        .iter()
        .filter_map(|c| c.isolation.as_ref())
        .map(|i| i.name().to_string())
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
    match options.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("reports serialise")
        ),
        Format::Text => print!("{}", render::text(&report, options.verbose)),
    }
    if report.summary.failed + report.summary.timeout > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn run_all(
    selected: &[&'static Case],
    jobs: Option<usize>,
    pcap: Option<&Path>,
) -> Vec<CaseReport> {
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get() * 2))
        .clamp(1, selected.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<CaseReport>>> = Mutex::new(vec![None; selected.len()]);
    // Runners that have reported but not yet exited, reaped once all cases have run.
    let finishing: Mutex<Vec<Child>> = Mutex::new(vec![]);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = selected.get(i) else { break };
                let (report, runner) = run_in_runner(case, pcap);
                results.lock().expect("no worker panics")[i] = Some(report);
                finishing.lock().expect("no worker panics").extend(runner);
            });
        }
    });
    for mut runner in finishing.into_inner().expect("no worker panics") {
        let _ = runner.wait();
    }
    results
        .into_inner()
        .expect("no worker panics")
        .into_iter()
        .flatten()
        .collect()
}

/// Start `sockconf run-case ID` and read its report. A runner that dies without one is
/// reported as the case's failure, with how it died. A runner that reported is returned
/// still running (it closes its capture last) for the caller to reap.
fn run_in_runner(case: &Case, pcap: Option<&Path>) -> (CaseReport, Option<Child>) {
    let exe = std::env::current_exe().expect("own path");
    let started = std::time::Instant::now();
    let mut runner = Command::new(exe);
    runner.args(["run-case", case.id]);
    if let Some(dir) = pcap {
        runner.arg("--pcap").arg(dir);
    }
    let spawned = runner
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let failure = |detail: String| CaseReport {
        id: case.id.to_string(),
        verdict: Verdict::Fail,
        detail: vec![detail],
        duration_ms: started.elapsed().as_millis() as u64,
        isolation: None,
        observations: Sides::default(),
        expectation: None,
        steps: vec![],
        segments: None,
    };
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            return (
                failure(format!("harness: cannot start the runner: {e}")),
                None,
            )
        }
    };
    // The runner writes little to stderr (a panic message), so reading stdout first cannot
    // leave it blocked on a full stderr pipe.
    let (mut stdout, mut stderr) = (vec![], vec![]);
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_end(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_end(&mut stderr);
    }
    if let Ok(mut report) = serde_json::from_slice::<CaseReport>(&stdout) {
        if report.verdict == Verdict::Timeout {
            report.detail.insert(0, "step deadline missed".into());
        }
        return (report, Some(child));
    }
    let status = child.wait();
    let stderr = String::from_utf8_lossy(&stderr);
    let report = match status {
        Err(e) => failure(format!("harness: cannot wait for the runner: {e}")),
        Ok(status) if status.code().is_none() => {
            let mut r = failure(format!(
                "harness: the runner was killed ({status:?}) after {} s; stderr: {}",
                started.elapsed().as_secs(),
                stderr.trim()
            ));
            r.verdict = Verdict::Timeout;
            r
        }
        Ok(status) => failure(format!(
            "harness: the runner gave no report ({status}); stderr: {}",
            stderr.trim()
        )),
    };
    (report, None)
}
