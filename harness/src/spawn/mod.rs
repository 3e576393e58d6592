//! Spawn and isolate: one case, start to verdict, inside the current (fresh, single-threaded)
//! process.

pub mod host_sysctl;
pub mod isolate;
pub mod netdev;
mod pair;
pub mod parent_death;
mod side;
pub mod unix_dir;
mod variants;

pub use pair::children_of_self;

use crate::case::{Instance, Need};
use crate::judge::wire::{self, diff_wire, WireFact};
use crate::judge::{diff_side, Expect};
use crate::kind::{Family, Kind};
use crate::observe::capture::Capture;
use crate::observe::clock::Origin;
use crate::observe::segment::{self, Segment};
use crate::platform::{kernel_release, parse_release, Os};
use crate::report::{CaseReport, Isolation, Sides, Verdict};
use std::time::{Duration, Instant};

/// After both sides are done, how long the runner keeps draining the capture for segments
/// still in flight (a reply the kernel sends from softirq a moment after a process exits),
/// unless every connection has visibly ended before (reset, or both FINs acknowledged).
pub const SETTLE_MAX: Duration = Duration::from_millis(100);

/// Undo what runners whose (owner, runner) pids `pick` chooses left behind when they could
/// not undo it themselves (killed mid-case): restore the host sysctls of their restore files
/// ([`host_sysctl`]) and remove their AF_UNIX directories under $TMPDIR ([`unix_dir`]). What
/// was done or failed, one line each. For `sockconf run` (after a runner died, at the start of
/// a run for dead owners' runners) and its interrupt path alike.
pub fn undo_leftovers(pick: impl Fn(u32, u32) -> bool) -> Vec<String> {
    let mut lines = host_sysctl::restore_leftovers(&pick);
    lines.extend(unix_dir::remove_leftovers(&pick));
    lines
}

/// Run one instance of a case in this process: check its needs, isolate, write its sysctls,
/// fork the pair, judge. The process should exit afterwards: it has left the host's network
/// namespace.
pub fn run_case(instance: Instance) -> CaseReport {
    run_case_capturing(instance).report
}

/// A case's outcome, with its capture still open.
pub struct CaseRun {
    pub report: CaseReport,
    /// The capture and its frames (for a pcap file). Closing an AF_PACKET socket waits out an
    /// RCU grace period (`packet_release()` -> `synchronize_net()`, about 10 ms here), so a
    /// runner drops it only after it has handed its report over.
    pub capture: Option<Capture>,
}

impl From<CaseReport> for CaseRun {
    fn from(report: CaseReport) -> CaseRun {
        CaseRun {
            report,
            capture: None,
        }
    }
}

/// [`run_case`], also returning the open capture.
pub fn run_case_capturing(instance: Instance) -> CaseRun {
    let Instance { case, kind } = instance;
    // Whatever host sysctl this case sets is put back, also if the runner panics; so is the
    // directory of an AF_UNIX instance's socket removed.
    let _restore = host_sysctl::RestoreOnDrop;
    let _remove = unix_dir::RemoveOnDrop;
    let start = Instant::now();
    let mut report = CaseReport::new(case.id, kind);
    let finish = |mut r: CaseReport, verdict: Verdict, why: Vec<String>| {
        r.conclude(verdict, why);
        r.duration_ms = start.elapsed().as_millis() as u64;
        r
    };

    let os = Os::current();
    if let Some(reason) = instance.cannot_apply_on(os) {
        return finish(report, Verdict::Skip, vec![reason]).into();
    }
    let no_wire = kind.no_wire_because();
    if let Some(why) = no_wire {
        report.notes.push(format!("no wire facts: {why}"));
    }
    let release = kernel_release();
    let expect = Expect::select(case.expect, os, parse_release(&release), kind);
    report.expectation = expect.map(Into::into);

    let origin = Origin::now();
    // A case with variants runs each in a sub-runner's namespace of its own; the capture
    // watches one namespace, so such cases are not captured.
    let mut capture: Result<Capture, String> = Err(match no_wire {
        Some(why) => why.into(),
        None => "the case runs one namespace per variant; the capture watches one".into(),
    });
    let outcome = if case.variants.is_empty() {
        prepare(case.needs.iter(), kind, &mut report.notes).map(|isolation| {
            if no_wire.is_none() {
                capture = Capture::open(&isolation);
            }
            let mut outcome = pair::run_pair(case, kind, None, origin, capture.as_mut().ok());
            if let (Isolation::Host { .. }, Ok(c)) = (&isolation, capture.as_mut()) {
                // The host's loopback carries other traffic too: keep this case's.
                c.keep_ports(outcome.ports.iter().copied(), Family::of(kind));
            }
            outcome.host_sysctls = host_sysctl::changes();
            outcome.errors.extend(host_sysctl::restore_all());
            outcome.errors.extend(unix_dir::remove_own());
            (isolation, outcome)
        })
    } else {
        variants::run_variants(case, kind, origin)
    };
    let outcome = match outcome {
        Ok((isolation, outcome)) => {
            report.isolation = Some(isolation);
            outcome
        }
        Err((isolation, reason)) => {
            report.isolation = Some(isolation);
            for e in host_sysctl::restore_all() {
                report.notes.push(e);
            }
            return finish(report, Verdict::Skip, vec![reason]).into();
        }
    };
    for c in &outcome.host_sysctls {
        report.notes.push(format!(
            "host sysctl {} was set to {} for this case (it was {}; --allow-host-sysctl) and restored",
            c.name, c.set, c.was
        ));
    }
    report.host_sysctls = outcome.host_sysctls.clone();
    report.observations = Sides {
        server: outcome.server,
        client: outcome.client,
    };
    report.steps = outcome.steps;
    // The segments to judge, or why there are none; the report carries whatever was seen.
    let segments = match &mut capture {
        Ok(c) => {
            settle(c, origin);
            let segs = segment::parse(c.frames(), origin);
            report.segments = Some(segs.clone());
            match c.lost() {
                0 => Ok(segs),
                lost => Err(format!(
                    "the capture lost {lost} frames (its buffer was full)"
                )),
            }
        }
        Err(why) => Err(why.clone()),
    };
    let (verdict, why) = judge(
        &mut report,
        expect,
        outcome.errors,
        outcome.timeout,
        &segments,
    );
    CaseRun {
        report: finish(report, verdict, why),
        capture: capture.ok(),
    }
}

/// The verdict on what the pair did and why; notes about the wire go into the report.
fn judge(
    report: &mut CaseReport,
    expect: Option<&Expect>,
    errors: Vec<String>,
    timeout: Option<Vec<String>>,
    segments: &Result<Vec<Segment>, String>,
) -> (Verdict, Vec<String>) {
    if !errors.is_empty() {
        return (Verdict::Fail, errors);
    }
    if let Some(hung) = timeout {
        return (Verdict::Timeout, hung);
    }
    let Some(expect) = expect else {
        let reason = format!(
            "no expectation has been confirmed on {} {} yet; the observations are reported unjudged",
            Os::current().name(),
            kernel_release()
        );
        return (Verdict::Skip, vec![reason]);
    };
    let mut diffs = diff_side("server", &report.observations.server, expect.server);
    diffs.extend(diff_side(
        "client",
        &report.observations.client,
        expect.client,
    ));
    match segments {
        Ok(segs) => {
            diffs.extend(diff_wire(expect.wire, segs, &report.steps));
            if expect
                .wire
                .iter()
                .any(|f| matches!(f, WireFact::TeardownOneOf(_)))
            {
                report.notes.push(format!(
                    "wire: the teardown was {}",
                    wire::teardown(segs).join(", ")
                ));
            }
        }
        Err(why) if !expect.wire.is_empty() => {
            report.notes.push(format!("wire facts not judged: {why}"))
        }
        Err(_) => {}
    }
    if diffs.is_empty() {
        (Verdict::Pass, vec![])
    } else {
        (Verdict::Fail, diffs)
    }
}

/// Drain the capture until every connection has ended on the wire, or [`SETTLE_MAX`].
fn settle(capture: &mut Capture, origin: Origin) {
    let deadline = Instant::now() + SETTLE_MAX;
    loop {
        capture.drain();
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || segment::all_ended(&segment::parse(capture.frames(), origin)) {
            return;
        }
        capture.wait(left);
    }
}

/// Isolate this (single-threaded) process and write the sysctls of `needs` in its namespace.
/// The isolation had, and on an unmet need (or a kind this machine lacks) the skip reason with
/// it.
fn prepare<'a>(
    needs: impl Iterator<Item = &'a Need>,
    kind: Kind,
    notes: &mut Vec<String>,
) -> Result<Isolation, (Isolation, String)> {
    let isolation = isolate::isolate();
    become_subreaper();
    if let Some(reason) = machine_lacks(kind) {
        return Err((isolation, reason));
    }
    for need in needs {
        let unmet = match (need, &isolation) {
            // Linux's sysctls; other OSes declare theirs as HostSysctl.
            (Need::Sysctl(..), _) if Os::current() != Os::Linux => None,
            (Need::HostSysctl(os, name, value), _) if *os == Os::current() => {
                if host_sysctl::allowed() {
                    host_sysctl::set(name, value).err()
                } else {
                    Some(format!(
                        "needs sysctl {name}={value}, which is host-wide on {}: it is only \
                         changed with `sockconf run --allow-host-sysctl` (for throwaway VMs)",
                        Os::current().name()
                    ))
                }
            }
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
    if kind.is_unix() {
        match unix_dir::make(&isolation) {
            Ok(note) => notes.push(note),
            Err(why) => {
                return Err((
                    isolation,
                    format!("no directory for the AF_UNIX socket: {why}"),
                ))
            }
        }
    }
    Ok(isolation)
}

/// Why this machine cannot run `kind` at all (a property of the machine, so the instance is
/// skipped with it): no IPv6, or no ::1 on its loopback (a kernel booted with ipv6.disable=1,
/// a namespace whose lo has `disable_ipv6` set). The dual-stack kind needs IPv6 as much as the
/// IPv6 kind does (its AF_INET6 sockets), though it starts from IPv4's loopback.
fn machine_lacks(kind: Kind) -> Option<String> {
    if !Family::of(kind).contains(&Family::Inet6) {
        return None;
    }
    let ipv6_loopback = Kind::Ipv6.loopback(0);
    let probe = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None)
        .and_then(|s| s.bind(&ipv6_loopback.into()));
    probe
        .err()
        .map(|e| format!("this machine has no IPv6 loopback: binding [::1]:0 failed ({e})"))
}

/// Orphans of the sides come to this runner to be reaped, not to init.
fn become_subreaper() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
    #[cfg(target_os = "freebsd")]
    // SAFETY: procctl(P_PID, 0 = self, PROC_REAP_ACQUIRE, NULL) takes no argument.
    unsafe {
        libc::procctl(
            libc::P_PID,
            0,
            libc::PROC_REAP_ACQUIRE,
            std::ptr::null_mut(),
        );
    }
}
