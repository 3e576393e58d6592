//! `sockconf run`: start one runner process per case (several at once: each has its own
//! network namespace), collect their reports, print them.

use crate::interrupt::{OutputFile, SpawnOwned, Started};
use crate::{render, schedule, Format};
use harness::report::{CaseReport, Environment, RunReport, Verdict};
use harness::spawn::host_sysctl::{self, alive};
use harness::Instance;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// A runner that outlives every step deadline is a harness bug; SIGALRM ends it.
const RUNNER_BACKSTOP_SECS: u32 = 120;

/// How `sockconf run` runs and shows the cases.
pub struct Options {
    pub format: Format,
    pub jobs: Option<usize>,
    /// Also write the run as JUnit XML here.
    pub junit: Option<PathBuf>,
    /// Draw each case's ladder.
    pub verbose: bool,
    /// Where each case's pcap file goes.
    pub pcap: Option<PathBuf>,
    /// Let cases set the host sysctls they declare on an OS without namespaces (and restore
    /// them): `--allow-host-sysctl`.
    pub allow_host_sysctl: bool,
    /// Also write the run as an HTML page here.
    pub html: Option<PathBuf>,
}

/// `sockconf run-case ID@KIND`: run one instance in this fresh, single-threaded process and
/// print its report as JSON; with `pcap`, also write its capture to `pcap/<id>@<kind>.pcap`.
pub fn run_case_here(instance: Instance, pcap: Option<&Path>, allow_host_sysctl: bool) -> ExitCode {
    // SAFETY: alarm() has no memory effects; SIGALRM's default action ends this process.
    unsafe { libc::alarm(RUNNER_BACKSTOP_SECS) };
    if allow_host_sysctl {
        harness::spawn::host_sysctl::allow();
    }
    let harness::spawn::CaseRun {
        mut report,
        capture,
    } = harness::spawn::run_case_capturing(instance);
    if let (Some(dir), Some(capture)) = (pcap, &capture) {
        let path = dir.join(pcap_name(instance));
        if let Err(e) = harness::observe::capture::write_pcap(&path, capture.frames()) {
            report
                .notes
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

/// The file an instance's capture is written to under `--pcap DIR`: `<id>@<kind>.pcap`.
pub fn pcap_name(instance: Instance) -> String {
    format!("{}.pcap", instance.name())
}

/// `sockconf probe-sysctls`: isolate this fresh process the way a case's runner is isolated and
/// print the sysctls it finds there as JSON. The process should exit afterwards.
pub fn probe_sysctls_here() -> ExitCode {
    harness::spawn::isolate::isolate();
    println!(
        "{}",
        serde_json::to_string(&harness::report::read_sysctls()).expect("maps serialise")
    );
    ExitCode::SUCCESS
}

/// The sysctls a case finds before writing its own, from `sockconf probe-sysctls`; empty if
/// the probe gave none.
fn case_sysctls() -> BTreeMap<String, String> {
    let Ok(exe) = std::env::current_exe() else {
        return BTreeMap::new();
    };
    Command::new(exe)
        .arg("probe-sysctls")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn_owned()
        .and_then(|probe| probe.wait_with_output())
        .ok()
        .and_then(|out| serde_json::from_slice(&out.stdout).ok())
        .unwrap_or_default()
}

/// Run `selected` and print the outcome (and write it as JUnit XML to `junit`); exit 0 when
/// nothing failed or timed out, 1 when something did, 2 when the JUnit file cannot be written.
/// Interrupted (see [`crate::interrupt`]), it prints no report and writes no JUnit file.
pub fn run(selected: &[Instance], options: &Options) -> ExitCode {
    // Created before the run, so that a bad path fails at once rather than after the suite.
    let (junit_file, html_file) = match (
        output_file("junit", options.junit.as_deref()),
        output_file("html", options.html.as_deref()),
    ) {
        (Ok(junit), Ok(html)) => (junit, html),
        _ => return ExitCode::from(2),
    };
    if let Some(dir) = &options.pcap {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("sockconf: --pcap {}: {e}", dir.display());
            return ExitCode::from(2);
        }
        // A runner writes its pcap under this name and renames it when complete.
        for instance in selected {
            let pcap = dir.join(pcap_name(*instance));
            crate::interrupt::remove_if_interrupted(harness::report::partial_path(&pcap));
        }
    }
    let report = run_report(
        selected,
        options.jobs,
        options.pcap.as_deref(),
        options.allow_host_sysctl,
    );
    let _outputs = crate::interrupt::outputs();
    match options.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("reports serialise")
        ),
        Format::Text => print!("{}", render::text(&report, options.verbose)),
    }
    let _ = std::io::stdout().flush();
    let failed = report.summary.failed + report.summary.timeout > 0;
    if let Some(file) = junit_file {
        if let Err(e) = file.finish(crate::junit::junit(&report).as_bytes()) {
            eprintln!("sockconf: --junit: {e}");
            return ExitCode::from(2);
        }
    }
    if let Some(file) = html_file {
        let title = crate::html::title(&report);
        let column = [(report.environment.kernel_release.clone(), report)];
        let page = crate::html::page(&title, &column, None, &[]);
        if let Err(e) = file.finish(page.as_bytes()) {
            eprintln!("sockconf: --html: {e}");
            return ExitCode::from(2);
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The output file `--{flag} path` asks for, or the error said in one line.
fn output_file(flag: &str, path: Option<&Path>) -> Result<Option<OutputFile>, ()> {
    path.map(OutputFile::create).transpose().map_err(|e| {
        let path = path.unwrap_or(Path::new("")).display();
        eprintln!("sockconf: --{flag} {path}: {e}");
    })
}

/// Run `selected`, each case in its own runner (writing its pcap to `pcap`), and gather one
/// run document. With `allow_host_sysctl`, cases may set the host sysctls they declare.
pub fn run_report(
    selected: &[Instance],
    jobs: Option<usize>,
    pcap: Option<&Path>,
    allow_host_sysctl: bool,
) -> RunReport {
    undo_leftovers(|owner, runner| !alive(owner) && !alive(runner));
    let environment_before = Environment {
        case_sysctls: case_sysctls(),
        ..Environment::here(vec![])
    };
    let cases = run_all(selected, jobs, pcap, allow_host_sysctl);
    let mut isolation: Vec<String> = cases
        .iter()
        .filter_map(|c| c.isolation.as_ref())
        .map(|i| i.name().to_string())
        .collect();
    isolation.sort();
    isolation.dedup();
    RunReport::new(
        Environment {
            isolation,
            ..environment_before
        },
        cases,
    )
}

/// Run `selected`, `jobs` at a time, each in its own runner (writing its pcap to `pcap`).
///
/// With `allow_host_sysctl`, the cases that set a host sysctl run after the others, one at a
/// time, so that no other case runs under a value it did not ask for. On SIGINT or SIGTERM the
/// interrupt thread ends the runners and restores whatever a killed runner left set before it
/// exits (`crate::interrupt`, `harness::spawn::host_sysctl`).
pub(crate) fn run_all(
    selected: &[Instance],
    jobs: Option<usize>,
    pcap: Option<&Path>,
    allow_host_sysctl: bool,
) -> Vec<CaseReport> {
    let history = schedule::History::load();
    let jobs = jobs
        .unwrap_or_else(|| schedule::default_jobs(selected, &history))
        .clamp(1, selected.len().max(1));
    // Cases that change a host sysctl run one at a time, after all the others: the host is
    // shared by every case of the run.
    let changes_host =
        |i: &Instance| allow_host_sysctl && !host_sysctl::needed_by(i.case).is_empty();
    let (alone, mut together): (Vec<usize>, Vec<usize>) =
        (0..selected.len()).partition(|&i| changes_host(&selected[i]));
    schedule::longest_first(selected, &mut together, &history);
    let results: Mutex<Vec<Option<CaseReport>>> = Mutex::new(vec![None; selected.len()]);
    let tasks: Vec<_> = selected
        .iter()
        .map(|instance| crate::interrupt::task(instance.name()))
        .collect();
    for (order, jobs) in [(&together, jobs), (&alone, 1)] {
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..jobs {
                s.spawn(|| {
                    // Runners that have reported but not yet exited (closing their capture). A
                    // worker reaps its own before it ends: a runner dies when the thread that
                    // started it ends (PR_SET_PDEATHSIG follows the thread), so the thread must
                    // outlive it.
                    let mut finishing = vec![];
                    while let Some(&i) = order.get(next.fetch_add(1, Ordering::SeqCst)) {
                        if crate::interrupt::interrupted().is_some() {
                            break;
                        }
                        tasks[i].running();
                        let (report, runner) =
                            report_of_runner(selected[i], pcap, false, allow_host_sysctl);
                        tasks[i].finished(report.verdict.name());
                        results.lock().expect("no worker panics")[i] = Some(report);
                        finishing.extend(runner);
                    }
                    for mut runner in finishing {
                        let _ = runner.wait();
                    }
                });
            }
        });
    }
    if allow_host_sysctl {
        let me = std::process::id();
        undo_leftovers(|owner, _| owner == me);
    }
    let reports: Vec<CaseReport> = results
        .into_inner()
        .expect("no worker panics")
        .into_iter()
        .flatten()
        .collect();
    if crate::interrupt::interrupted().is_none() {
        schedule::History::record(&reports);
    }
    reports
}

/// Undo what the runners that `pick` chooses by (owner, runner) pid left behind (host
/// sysctls, AF_UNIX directories: `harness::spawn::undo_leftovers`), saying so on stderr.
fn undo_leftovers(pick: impl Fn(u32, u32) -> bool) {
    for line in harness::spawn::undo_leftovers(pick) {
        eprintln!("sockconf: {line}");
    }
}

/// Start `sockconf run-case ID` and read its report; also return the runner if it reported and
/// is still running (it closes its capture last), for the caller to reap. A runner that dies
/// without a report is reported as the case's failure, with how it died.
pub(crate) fn report_of_runner(
    instance: Instance,
    pcap: Option<&Path>,
    capture_off: bool,
    allow_host_sysctl: bool,
) -> (CaseReport, Option<Started>) {
    let exe = std::env::current_exe().expect("own path");
    let started = std::time::Instant::now();
    let mut runner = Command::new(exe);
    runner.arg("run-case").arg(instance.name());
    if let Some(dir) = pcap {
        runner.arg("--pcap").arg(dir);
    }
    if capture_off {
        runner.env(harness::observe::capture::CAPTURE_ENV, "off");
    }
    if allow_host_sysctl {
        runner
            .arg("--allow-host-sysctl")
            .env(host_sysctl::OWNER_ENV, std::process::id().to_string());
    }
    let spawned = runner
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_owned();
    let failure = |verdict: Verdict, why: String| {
        let mut report = CaseReport::new(instance.case.id, instance.kind);
        report.conclude(verdict, vec![why]);
        report.duration_ms = started.elapsed().as_millis() as u64;
        report
    };
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let why = format!("harness: cannot start the runner: {e}");
            return (failure(Verdict::Fail, why), None);
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
            report.failure.insert(0, "step deadline missed".into());
        }
        return (report, Some(child));
    }
    let stderr = String::from_utf8_lossy(&stderr);
    let waited = child.wait();
    // A runner that died mid-case may have left a host sysctl set, or its AF_UNIX directory.
    let runner_pid = child.id();
    undo_leftovers(|_, runner| runner == runner_pid);
    let report = match waited {
        Err(e) => failure(
            Verdict::Fail,
            format!("harness: cannot wait for the runner: {e}"),
        ),
        Ok(status) if status.code().is_none() => failure(
            Verdict::Timeout,
            format!(
                "harness: the runner was killed ({status:?}) after {} s; stderr: {}",
                started.elapsed().as_secs(),
                stderr.trim()
            ),
        ),
        Ok(status) => failure(
            Verdict::Fail,
            format!(
                "harness: the runner gave no report ({status}); stderr: {}",
                stderr.trim()
            ),
        ),
    };
    (report, None)
}
