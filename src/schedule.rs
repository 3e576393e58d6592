//! In which order and how many at once `sockconf run` starts its instances, so that the run
//! ends soon after its longest instance does (issue 10: at most 1.10 times it, `make bench`).
//!
//! Cases mostly wait on kernel timers (a keepalive, a linger, the TIME_WAIT reuse delay), a
//! few for seconds. A run cannot end before its longest instance does, so the longest start
//! first (longest-processing-time-first scheduling) and the short ones fill the other jobs
//! around them; the waiting ones get jobs of their own on top of the per-core ones.
//!
//! How long an instance takes comes from two places: what it took in the last run on this
//! machine ([`History`], a file next to the executable, `target/debug/sockconf-durations.json`
//! under cargo), and, for an instance that never ran here, what its declaration says it waits
//! ([`expected_ms`]). The order never changes what a case observes (each runs in a namespace of
//! its own), only when the run ends.

use harness::report::CaseReport;
use harness::Instance;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Cases run at once per core, unless `--jobs` says otherwise. Cases mostly wait (linger and
/// retransmission timers, barriers) and cost the harness about 1 ms each beyond a bare
/// namespace and its processes (`make bench`), so far more run at once than there are cores.
/// `make bench` on 2 cores shared with other work (load 15), the catalogue x3 (69 cases, 6 of
/// them waiting 1 s), wall time / longest case: 2.56 at 4 jobs, 1.58 at 8, 1.25 at 16, 1.18 at
/// 32, 1.09 at 64 (but 1536 ms wall there). Past 16 the wall time hardly moves while
/// contention stretches every case: the summed case time goes from 10.8 s at 16 jobs to 15.9 s
/// at 32 and 26.9 s at 64, eating into the timing tolerances.
const JOBS_PER_CORE: usize = 8;

/// An instance expected to take at least this long spends it waiting on a kernel timer, not on
/// a CPU: it gets a job of its own on top of the per-core ones.
const WAITS_MS: u64 = 1_000;

/// How many instances run at once by default: [`JOBS_PER_CORE`] per core, plus one for each
/// instance expected to take a second or more ([`WAITS_MS`]), no more than there are
/// instances. The waiting ones start first ([`longest_first`]) and would otherwise hold most
/// of the per-core jobs for seconds, leaving the short instances to queue behind one or two.
pub fn default_jobs(selected: &[Instance], history: &History) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let here = here();
    let waiting = selected
        .iter()
        .filter(|&&i| history.estimate(i, here) >= WAITS_MS)
        .count();
    (cores * JOBS_PER_CORE + waiting).clamp(1, selected.len().max(1))
}

/// Order `order` (indices into `selected`) longest expected first. Ties keep the selection's
/// order.
pub fn longest_first(selected: &[Instance], order: &mut [usize], history: &History) {
    let here = here();
    order.sort_by_cached_key(|&i| std::cmp::Reverse(history.estimate(selected[i], here)));
}

/// This OS and kernel release, as expectations are selected by.
type Here = (harness::Os, (u32, u32, u32));

fn here() -> Here {
    (
        harness::Os::current(),
        harness::platform::parse_release(&harness::platform::kernel_release()),
    )
}

/// How long an instance is expected to take, from its declaration alone: what its expectation
/// for this OS, kernel and kind says it waits (the lower bounds of its `*.ms` facts, which the
/// cases record for a wait they time: a SYN retransmission, a linger, a keepalive, the reuse
/// delay; summed over its variants' facts), plus [`RUN_MS`] per run of the pair (one per
/// variant). A wait a case does not time as a fact is not seen here: finwait2.held_socket_stays
/// polls for 4 s and records only that the poll timed out, so on a machine where it never ran
/// it starts among the short ones.
pub fn expected_ms(instance: Instance, (os, release): Here) -> u64 {
    let case = instance.case;
    let waits: u64 = harness::Expect::select(case.expect, os, release, instance.kind)
        .map(|e| {
            e.server
                .iter()
                .chain(e.client.iter())
                .filter(|(name, _)| name.ends_with(".ms"))
                .map(|(_, m)| match m {
                    harness::Matcher::MillisIn(lo, _) => *lo,
                    _ => 0,
                })
                .sum()
        })
        .unwrap_or(0);
    waits + RUN_MS * case.variants.len().max(1) as u64
}

/// What one run of a case's pair costs besides its waits, as an estimate for ordering: a
/// namespace, two sides and their handshakes (about 100 to 300 ms here under load).
const RUN_MS: u64 = 200;

/// What each instance took in the last run on this machine that ran it, by `id@kind`.
#[derive(Default)]
pub struct History {
    took_ms: BTreeMap<String, u64>,
}

impl History {
    /// The durations of earlier runs; none when there is no file, or it cannot be read.
    pub fn load() -> History {
        let took_ms = path()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        History { took_ms }
    }

    /// How many instances it knows.
    pub fn len(&self) -> usize {
        self.took_ms.len()
    }

    /// What the instance took last time, or else what its declaration says it waits.
    fn estimate(&self, instance: Instance, here: Here) -> u64 {
        self.took_ms
            .get(&instance.name())
            .copied()
            .unwrap_or_else(|| expected_ms(instance, here))
    }

    /// Keep what these instances took, with what the file knows of others; a cache, so a
    /// failure to write it is ignored (a read-only install orders by declarations alone).
    /// Written whole under another name and renamed, so that concurrent runs never read half.
    pub fn record(reports: &[CaseReport]) {
        let Some(path) = path() else { return };
        let mut history = History::load();
        for r in reports {
            history.took_ms.insert(r.instance(), r.duration_ms);
        }
        let partial = path.with_extension(format!("{}.partial", std::process::id()));
        let text = serde_json::to_string_pretty(&history.took_ms).expect("maps serialise");
        if std::fs::write(&partial, text + "\n").is_err()
            || std::fs::rename(&partial, &path).is_err()
        {
            let _ = std::fs::remove_file(&partial);
        }
    }
}

/// The history's file: `sockconf-durations.json` next to the executable.
fn path() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join("sockconf-durations.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The instances whose expectations time a wait of seconds come before those that wait
    /// for nothing, and what an instance took last time outranks its declaration.
    #[test]
    fn longest_expected_first_and_history_outranks_the_declaration() {
        let instances = cases::instances();
        let name = |i: usize| instances[i].name();
        let mut order: Vec<usize> = (0..instances.len()).collect();
        longest_first(&instances, &mut order, &History::default());
        let first = name(order[0]);
        assert!(first.starts_with("timewait.tw_reuse@"), "{first}");
        let held = "finwait2.held_socket_stays@ipv4";
        let at = |order: &[usize]| order.iter().position(|&i| name(i) == held).unwrap();
        let unknown = at(&order);
        assert!(unknown > 10, "its 4 s poll is not declared: {unknown}");
        let history = History {
            took_ms: [(held.to_string(), 60_000)].into_iter().collect(),
        };
        longest_first(&instances, &mut order, &history);
        assert_eq!(at(&order), 0);
    }
}
