//! `sockconf bench` (hidden; `make bench`): what the harness costs per case, and how the suite's
//! wall time compares with its longest case at several job counts. Medians of several runs.
//!
//! Cases mostly wait (for a linger timeout, a SYN retransmission, a barrier), so the suite's
//! wall time should be close to its longest case's, and the default job count is chosen from
//! these figures (see `orchestrate::default_jobs`). Last, what writing the HTML page adds to a
//! run of the catalogue (the budget: 5% of its wall time).

use crate::orchestrate::{default_jobs, report_of_runner, run_all};
use harness::report::{CaseReport, Environment, RunReport, Verdict};
use harness::{is, Case, Ctx, Expect, Instance, Kernel, Os, Provenance, Side, SigPipe};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// A case that does nothing: fork the pair, both sides return at once. Its wall time is the
/// harness's own cost per case (start the runner, isolate, fork, report, reap).
/// Not in the catalogue; only `run-case` knows its id, for this benchmark.
pub static NOOP: Case = Case {
    id: "bench.noop",
    doc: "Both sides return at once: the harness's own cost per case.",
    source: "sockconf's benchmark",
    needs: &[],
    server: Side {
        sigpipe: SigPipe::Ignore,
        run: do_nothing,
    },
    client: Side {
        sigpipe: SigPipe::Ignore,
        run: do_nothing,
    },
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
    step_deadline: Case::STEP_DEADLINE,
    variants: &[],
    kinds: &[harness::Kind::Ipv4],
};

/// The no-op case's one instance (IPv4: its sides open no socket, so the kind is moot).
pub fn noop() -> Instance {
    Instance {
        case: &NOOP,
        kind: harness::Kind::Ipv4,
    }
}

fn do_nothing(_ctx: &mut Ctx) {}

/// How many no-op cases are timed one after the other, per run asked for.
const NOOPS_PER_RUN: usize = 10;

/// Time the no-op case and the whole suite; print medians. Exit 1 if any case did not pass or
/// skip (a benchmark of a failing suite measures the wrong thing).
pub fn bench(runs: usize, job_counts: &[usize]) -> ExitCode {
    let runs = runs.max(1);
    let mut healthy = true;

    // The no-op case's runner, timed to the moment it hands its report over (what `run` waits
    // for per case) and to its exit (which, with the capture on, includes closing the
    // AF_PACKET socket: an RCU grace period the runner spends after reporting). Interleaved
    // with the capture off, so that both see the same machine.
    let (mut to_report, mut to_exit) = ([vec![], vec![]], [vec![], vec![]]);
    for _ in 0..runs * NOOPS_PER_RUN {
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
    println!(
        "harness overhead per case (bench.noop, one at a time, {} runs each, medians):",
        runs * NOOPS_PER_RUN
    );
    for (i, capture) in ["on", "off"].into_iter().enumerate() {
        println!(
            "  capture {capture:<3}  until the report {:>5.1} ms   until the runner exits {:>5.1} ms",
            ms(median(&mut to_report[i])),
            ms(median(&mut to_exit[i])),
        );
    }

    let catalogue = cases::instances();
    let mut job_counts = job_counts.to_vec();
    // The suite's wall time and the time to write its HTML page, run by run, at the default
    // job count.
    let mut pages: Vec<(Duration, Duration)> = vec![];
    // The catalogue three times over stands in for a larger one with more waiting cases: the
    // default job count must not serialise the waits as the catalogue grows.
    for copies in [1, 3] {
        let suite: Vec<Instance> = (0..copies).flat_map(|_| catalogue.clone()).collect();
        let default = default_jobs(suite.len());
        if !job_counts.contains(&default) {
            job_counts.push(default);
        }
        job_counts.sort_unstable();
        job_counts.dedup();
        println!(
            "\nthe catalogue x{copies} ({} cases), {runs} runs per job count",
            suite.len()
        );
        println!(
            "{:>6} {:>12} {:>14} {:>13} {:>14}",
            "jobs", "wall median", "longest case", "wall/longest", "sum of cases"
        );
        for &jobs in job_counts.iter().filter(|&&j| j <= suite.len()) {
            let (mut walls, mut longest, mut sums) = (vec![], vec![], vec![]);
            for _ in 0..runs {
                let start = Instant::now();
                let reports = run_all(&suite, Some(jobs), None, false);
                walls.push(start.elapsed());
                if copies == 1 && jobs == default {
                    pages.push((start.elapsed(), html_page(&reports)));
                }
                longest.push(longest_case(&reports));
                sums.push(
                    reports
                        .iter()
                        .map(|r| Duration::from_millis(r.duration_ms))
                        .sum(),
                );
                healthy &= reports
                    .iter()
                    .all(|r| matches!(r.verdict, Verdict::Pass | Verdict::Skip));
            }
            let (wall, longest) = (median(&mut walls), median(&mut longest));
            println!(
                "{:>6} {:>9.0} ms {:>11.0} ms {:>13.2} {:>11.0} ms{}",
                jobs,
                ms(wall),
                ms(longest),
                wall.as_secs_f64() / longest.as_secs_f64().max(1e-3),
                ms(median(&mut sums)),
                if jobs == default { "   (default)" } else { "" }
            );
        }
    }
    let (mut walls, mut writes): (Vec<Duration>, Vec<Duration>) = pages.into_iter().unzip();
    let (wall, write) = (median(&mut walls), median(&mut writes));
    println!(
        "\nthe HTML page of the catalogue's run (`run --html`), {} runs at the default job count: {:.1} ms median, {:.2}% of the run's {:.0} ms median wall time",
        writes.len(),
        ms(write),
        100.0 * write.as_secs_f64() / wall.as_secs_f64().max(1e-3),
        ms(wall)
    );
    if healthy {
        ExitCode::SUCCESS
    } else {
        eprintln!("sockconf bench: some case did not pass; the figures measure a broken suite");
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
