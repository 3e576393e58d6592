//! `sockconf bench` (hidden; `make bench`): the two figures issue 10 holds the harness to, as
//! medians of several runs, with the machine's load average beside them:
//!
//! (a) the suite, every instance of the catalogue (every case over every kind it runs over) at
//!     the default job count: its wall time against its longest instance's time; at most
//!     [`WALL_BOUND`] times. Cases mostly wait (a linger, a SYN retransmission, a keepalive),
//!     so many run at once and the run should end soon after its longest instance does.
//! (b) the harness's own cost per case: the no-op case's runner (start `sockconf run-case`,
//!     isolate, fork the pair, report), timed until it hands its report over as `run` waits
//!     for it, minus the floor no harness can go under: a bare `sockconf probe-floor` process
//!     (the same binary started the same way) that does unshare(CLONE_NEWNET) (with
//!     CLONE_NEWUSER when unprivileged), forks two children that exit at once, waits for both,
//!     and exits. At most [`COST_BOUND_MS`] apart. The floor leaves out what the harness adds on
//!     purpose: loopback brought up, the user namespace's id maps, the capture socket, the
//!     pipes and barriers between the sides, the report.
//!
//! The three are interleaved (floor, no-op with capture, no-op without) so that all see the
//! same machine. `--jobs` adds the suite's wall time at other job counts; last, what writing
//! the HTML page adds to a run (its budget: 5% of the run's wall time).

use crate::orchestrate::{report_of_runner, run_all};
use crate::schedule::{default_jobs, History};
use harness::report::{CaseReport, Environment, RunReport, Verdict};
use harness::{is, Case, Ctx, Expect, Instance, Kernel, Os, Provenance, Side};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// (a): the suite's wall time may be at most this many times its longest instance's.
const WALL_BOUND: f64 = 1.10;
/// (b): the no-op case's runner may cost at most this much more than the floor.
const COST_BOUND_MS: f64 = 3.0;

/// A case that does nothing: fork the pair, both sides return at once. Its wall time is the
/// harness's own cost per case (start the runner, isolate, fork, report, reap).
/// Not in the catalogue; only `run-case` knows its id, for this benchmark.
pub static NOOP: Case = Case {
    id: "bench.noop",
    doc: "Both sides return at once: the harness's own cost per case.",
    source: "sockconf's benchmark",
    server: Side::new(do_nothing),
    client: Side::new(do_nothing),
    expect: &[Expect {
        os: Os::current(),
        kernel: Kernel::ANY,
        // The no-op case measures the harness, not a kernel behaviour.
        source: "none: the harness's own cost",
        provenance: Provenance::FromSource,
        kinds: &[],
        server: &[("exit", is("exit 0"))],
        client: &[("exit", is("exit 0"))],
        wire: &[],
    }],
    // IPv4: its sides open no socket, so the kind is moot.
    kinds: &[harness::Kind::Ipv4],
    ..Case::DEFAULTS
};

/// The no-op case's one instance.
pub fn noop() -> Instance {
    Instance {
        case: &NOOP,
        kind: harness::Kind::Ipv4,
    }
}

fn do_nothing(_ctx: &mut Ctx) {}

/// `sockconf probe-floor` (hidden): the namespace-and-process floor of (b). In this fresh,
/// single-threaded process: a network namespace of its own (through a user namespace when
/// unprivileged, without id maps), two children forked that exit at once, both waited for.
pub fn probe_floor_here() -> ExitCode {
    use nix::unistd::{fork, ForkResult};
    // Elsewhere there are no namespaces: the floor is the processes alone, as the runner's.
    #[cfg(target_os = "linux")]
    {
        use nix::sched::{unshare, CloneFlags};
        let isolated = unshare(CloneFlags::CLONE_NEWNET)
            .or_else(|_| unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET));
        if let Err(e) = isolated {
            eprintln!("sockconf probe-floor: unshare: {e}");
            return ExitCode::from(1);
        }
    }
    let mut children = vec![];
    for _ in 0..2 {
        // Safe: this process is single-threaded (main has started no thread in this mode), and
        // the child only calls _exit.
        match unsafe { fork() } {
            // SAFETY: leave at once, running nothing of the parent's.
            Ok(ForkResult::Child) => unsafe { libc::_exit(0) },
            Ok(ForkResult::Parent { child }) => children.push(child),
            Err(e) => {
                eprintln!("sockconf probe-floor: fork: {e}");
                return ExitCode::from(1);
            }
        }
    }
    for child in children {
        let _ = nix::sys::wait::waitpid(child, None);
    }
    ExitCode::SUCCESS
}

/// Start `sockconf probe-floor` as a runner is started (stdout and stderr piped, read to the
/// end) and wait for it; how long that took, or `None` if it failed.
fn floor_once() -> Option<Duration> {
    let exe = std::env::current_exe().ok()?;
    let start = Instant::now();
    let out = Command::new(exe)
        .arg("probe-floor")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .ok()?;
    let took = start.elapsed();
    out.status.success().then_some(took)
}

/// How many no-op cases (and floors) are timed one after the other, per run asked for.
const NOOPS_PER_RUN: usize = 10;

/// The load average over the last minute, from /proc/loadavg (Linux); `?` elsewhere.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn within(ok: bool) -> &'static str {
    if ok {
        "within"
    } else {
        "OVER"
    }
}

/// Time the floor, the no-op case and the whole suite; print (a) and (b). Exit 1 if any case
/// did not pass or skip (a benchmark of a failing suite measures the wrong thing) or a figure
/// is over its bound.
pub fn bench(runs: usize, job_counts: &[usize]) -> ExitCode {
    let runs = runs.max(1);
    let mut healthy = true;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "sockconf bench: {runs} runs per figure, {cores} cores, load average {} at the start",
        load()
    );

    // (b). The no-op case's runner timed to the moment it hands its report over (what `run`
    // waits for per case) and to its exit (which, with the capture on, includes closing the
    // AF_PACKET socket: an RCU grace period the runner spends after reporting).
    let (mut floors, mut to_report, mut to_exit) = (vec![], [vec![], vec![]], [vec![], vec![]]);
    for _ in 0..runs * NOOPS_PER_RUN {
        match floor_once() {
            Some(took) => floors.push(took),
            None => healthy = false,
        }
        for (i, capture) in ["on", "off"].into_iter().enumerate() {
            let start = Instant::now();
            let (report, runner) = report_of_runner(noop(), None, capture == "off", false);
            to_report[i].push(start.elapsed());
            if let Some(mut runner) = runner {
                let _ = runner.wait();
            }
            to_exit[i].push(start.elapsed());
            healthy &= report.verdict == Verdict::Pass;
        }
    }
    if floors.is_empty() {
        eprintln!("sockconf bench: sockconf probe-floor failed (no namespace?)");
        return ExitCode::from(1);
    }
    let floor = ms(median(&mut floors));
    println!(
        "\n(b) the harness's cost per case: {} rounds of floor, no-op with capture, no-op without; medians",
        runs * NOOPS_PER_RUN
    );
    // probe-floor falls back to a user namespace where a network namespace alone is refused.
    let unshared = if nix::unistd::geteuid().is_root() {
        "CLONE_NEWNET"
    } else {
        "CLONE_NEWUSER|CLONE_NEWNET"
    };
    println!(
        "  floor: spawn sockconf, unshare({unshared}), fork 2 children, wait   {floor:>6.1} ms"
    );
    let mut reported = [0.0; 2];
    for (i, capture) in ["on", "off"].into_iter().enumerate() {
        reported[i] = ms(median(&mut to_report[i]));
        println!(
            "  bench.noop, capture {capture:<3}: until its report {:>6.1} ms, until its runner exits {:>6.1} ms",
            reported[i],
            ms(median(&mut to_exit[i])),
        );
    }
    let cost = reported[0] - floor;
    let cost_ok = cost <= COST_BOUND_MS;
    println!(
        "  (b) no-op until its report (capture on) - floor = {cost:.1} ms; bound {COST_BOUND_MS} ms: {}",
        within(cost_ok)
    );

    // (a). Every instance at the default job count, and at the counts `--jobs` adds.
    let suite: Vec<Instance> = cases::instances();
    // The order comes from the last run's durations where there was one (`schedule`): say
    // how many instances it knew, since the first run of a fresh build orders by declarations.
    let history = History::load();
    let default = default_jobs(&suite, &history);
    let mut job_counts: Vec<usize> = job_counts
        .iter()
        .copied()
        .filter(|&j| j >= 1 && j <= suite.len())
        .chain([default])
        .collect();
    job_counts.sort_unstable();
    job_counts.dedup();
    println!(
        "\n(a) the suite: {} instances (every case over every kind), {runs} runs per job count, medians; load average {} now; an earlier run's durations known for {} instances",
        suite.len(),
        load(),
        history.len()
    );
    println!(
        "{:>6} {:>12} {:>14} {:>13} {:>14}",
        "jobs", "wall", "longest case", "wall/longest", "sum of cases"
    );
    // The suite's wall time and the time to write its HTML page, run by run, at the default
    // job count.
    let mut pages: Vec<(Duration, Duration)> = vec![];
    let mut ratio_at_default = f64::INFINITY;
    let mut longest_named = String::new();
    for &jobs in &job_counts {
        let (mut walls, mut longest, mut sums) = (vec![], vec![], vec![]);
        for _ in 0..runs {
            let start = Instant::now();
            let reports = run_all(&suite, Some(jobs), None, false);
            walls.push(start.elapsed());
            if jobs == default {
                pages.push((start.elapsed(), html_page(&reports)));
                if let Some(r) = reports.iter().max_by_key(|r| r.duration_ms) {
                    longest_named = r.instance();
                }
            }
            longest.push(longest_case(&reports));
            sums.push(
                reports
                    .iter()
                    .map(|r| Duration::from_millis(r.duration_ms))
                    .sum(),
            );
            for r in &reports {
                if !matches!(r.verdict, Verdict::Pass | Verdict::Skip) {
                    healthy = false;
                    eprintln!("sockconf bench: {} {}", r.instance(), r.verdict.name());
                }
            }
        }
        let (wall, longest) = (median(&mut walls), median(&mut longest));
        let ratio = wall.as_secs_f64() / longest.as_secs_f64().max(1e-3);
        if jobs == default {
            ratio_at_default = ratio;
        }
        println!(
            "{:>6} {:>9.0} ms {:>11.0} ms {:>13.2} {:>11.0} ms{}",
            jobs,
            ms(wall),
            ms(longest),
            ratio,
            ms(median(&mut sums)),
            if jobs == default { "   (default)" } else { "" }
        );
    }
    let wall_ok = ratio_at_default <= WALL_BOUND;
    println!(
        "  (a) wall / longest instance at the default {default} jobs = {ratio_at_default:.2} (the longest: {longest_named}, in the last run); bound {WALL_BOUND}: {}",
        within(wall_ok)
    );

    let (mut walls, mut writes): (Vec<Duration>, Vec<Duration>) = pages.into_iter().unzip();
    let (wall, write) = (median(&mut walls), median(&mut writes));
    println!(
        "\nthe HTML page of the suite's run (`run --html`), {} runs at the default job count: {:.1} ms median, {:.2}% of the run's {:.0} ms median wall time",
        writes.len(),
        ms(write),
        100.0 * write.as_secs_f64() / wall.as_secs_f64().max(1e-3),
        ms(wall)
    );
    println!("load average {} at the end", load());
    if !healthy {
        eprintln!("sockconf bench: some case did not pass; the figures measure a broken suite");
    }
    if healthy && wall_ok && cost_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Write the page `sockconf run --html` writes for these reports, as it does (built, then
/// written to a file); how long that took.
fn html_page(reports: &[CaseReport]) -> Duration {
    let start = Instant::now();
    let report = RunReport::new(Environment::here(vec![]), reports.to_vec());
    let title = crate::html::title(&report);
    let page = crate::html::page(&title, &[(String::new(), report)], None, &[]);
    let path = std::env::temp_dir().join(format!("sockconf-bench-{}.html", std::process::id()));
    let _ = std::fs::write(&path, page);
    let took = start.elapsed();
    let _ = std::fs::remove_file(&path);
    took
}

fn longest_case(reports: &[CaseReport]) -> Duration {
    reports
        .iter()
        .map(|r| Duration::from_millis(r.duration_ms))
        .max()
        .unwrap_or_default()
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
