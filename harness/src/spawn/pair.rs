//! Fork the server and the client and conduct them: relay barriers, collect facts, enforce
//! each step's deadline, and reap both.

use super::side;
use crate::case::{Case, Variant};
use crate::kind::Kind;
use crate::observe::capture::Capture;
use crate::observe::clock::Origin;
use crate::observe::protocol::{Release, Report};
use crate::observe::Role;
use crate::observe::{Fact, Value};
use crate::report::StepMark;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Instant;

/// What happened to the pair.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct PairOutcome {
    pub server: Vec<Fact>,
    pub client: Vec<Fact>,
    /// Setup errors (a script panicked) and protocol errors, one line each.
    pub errors: Vec<String>,
    /// Where the pair hung, if a step missed its deadline.
    pub timeout: Option<Vec<String>>,
    /// When each barrier was released.
    pub steps: Vec<StepMark>,
    /// The local ports the sides claimed ([`crate::Ctx::claim_port`]).
    #[serde(default)]
    pub ports: Vec<u16>,
    /// The host sysctls set for the pair (filled in by the runner that set them).
    #[serde(default)]
    pub host_sysctls: Vec<super::host_sysctl::HostSysctlChange>,
}

/// The runner's view of one side.
struct Child {
    role: Role,
    pid: Pid,
    reports: File,
    pending: Vec<u8>,
    releases: File,
    facts: Vec<Fact>,
    ports: Vec<u16>,
    /// The barrier it waits at, with the value it offers.
    waiting: Option<(String, u64)>,
    /// The step it is in (named by the last barrier passed) and the call it last began.
    step: String,
    call: Option<String>,
    reports_closed: bool,
    /// How it ended, and when the runner saw it.
    exited: Option<(WaitStatus, u64)>,
    origin: Origin,
}

impl Child {
    fn finished(&self) -> bool {
        self.exited.is_some()
    }

    fn whereabouts(&self) -> String {
        match (&self.waiting, &self.call) {
            (Some((step, _)), _) => format!("{} waits at barrier '{step}'", self.role.name()),
            (None, Some(call)) => format!(
                "{} hung in step '{}' at call '{call}'",
                self.role.name(),
                self.step
            ),
            (None, None) => format!("{} hung in step '{}'", self.role.name(), self.step),
        }
    }

    /// Read what the side wrote; false once its pipe is closed.
    fn drain(&mut self, errors: &mut Vec<String>) {
        let mut buf = [0u8; 4096];
        match self.reports.read(&mut buf) {
            Ok(0) | Err(_) => self.reports_closed = true,
            Ok(n) => self.pending.extend_from_slice(&buf[..n]),
        }
        while let Some(nl) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=nl).collect();
            match serde_json::from_slice::<Report>(&line) {
                Ok(Report::Begin { call }) => self.call = Some(call),
                Ok(Report::Fact(f)) => self.facts.push(f),
                Ok(Report::Port { port }) => self.ports.push(port),
                Ok(Report::Arrive { step, value }) => self.waiting = Some((step, value)),
                Ok(Report::Error { message }) => {
                    errors.push(format!("{} script failed: {message}", self.role.name()))
                }
                Ok(Report::Done) => self.call = None,
                Err(e) => errors.push(format!("{}: unreadable report: {e}", self.role.name())),
            }
        }
    }

    fn release(&mut self, peer: u64, step: String) {
        let mut line = serde_json::to_vec(&Release { peer }).expect("serialises");
        line.push(b'\n');
        // A side that died cannot be released; its exit is recorded instead.
        let _ = self.releases.write_all(&line);
        self.waiting = None;
        self.call = None;
        self.step = step;
    }

    fn reap(&mut self, flags: Option<WaitPidFlag>) {
        if self.exited.is_none() {
            match waitpid(self.pid, flags) {
                Ok(WaitStatus::StillAlive) | Err(_) => {}
                Ok(status) => self.exited = Some((status, self.origin.elapsed_us())),
            }
        }
    }
}

/// Fork both sides of `case` and conduct them to the end, draining `capture` (if any) as
/// frames arrive. Times are offsets from `origin`.
///
/// Must be called from a single-threaded process: the runner (`sockconf run-case`) is one.
pub fn run_pair(
    case: &Case,
    kind: Kind,
    variant: Option<&'static Variant>,
    origin: Origin,
    mut capture: Option<&mut Capture>,
) -> PairOutcome {
    assert_single_threaded();
    let mut children = [
        spawn_side(Role::Server, case, kind, variant, origin),
        spawn_side(Role::Client, case, kind, variant, origin),
    ];
    let mut errors = vec![];
    let mut timeout = None;
    let mut steps = vec![];

    // SIGCHLD wakes the poll loop through a self-pipe (signal-hook), so exits are seen at once
    // on every OS. Registered after the forks, so that the sides do not inherit it.
    let (wake_rx, wake_tx) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    wake_rx.set_nonblocking(true).expect("nonblocking");
    let sigchld =
        signal_hook::low_level::pipe::register(libc::SIGCHLD, wake_tx).expect("SIGCHLD pipe");

    let mut deadline = Instant::now() + case.step_deadline;
    loop {
        for c in children.iter_mut() {
            c.reap(Some(WaitPidFlag::WNOHANG));
        }
        if children.iter().all(Child::finished) {
            break;
        }
        if !errors.is_empty() {
            kill_all(&mut children);
            break;
        }
        if let Some(step) = conduct_barriers(&mut children, &mut errors, &mut deadline, case) {
            steps.push(step);
        }

        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            timeout = Some(
                children
                    .iter()
                    .filter(|c| !c.finished())
                    .map(Child::whereabouts)
                    .collect(),
            );
            kill_all(&mut children);
            break;
        }
        let mut fds: Vec<libc::pollfd> = children
            .iter()
            .filter(|c| !c.reports_closed)
            .map(|c| libc::pollfd {
                fd: c.reports.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        fds.push(libc::pollfd {
            fd: wake_rx.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        if let Some(c) = capture.as_deref() {
            fds.push(libc::pollfd {
                fd: c.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // SAFETY: a valid array of pollfds for the duration of the call.
        unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                left.as_millis().max(1) as libc::c_int,
            )
        };
        if let Some(c) = capture.as_deref_mut() {
            c.drain();
        }
        let mut sink = [0u8; 64];
        while (&wake_rx).read(&mut sink).is_ok_and(|n| n > 0) {}
        for c in children.iter_mut() {
            if !c.reports_closed
                && fds
                    .iter()
                    .any(|p| p.fd == c.reports.as_raw_fd() && p.revents != 0)
            {
                c.drain(&mut errors);
            }
        }
    }
    signal_hook::low_level::unregister(sigchld);
    // Whatever a side forked and left behind goes with it.
    for c in children.iter_mut() {
        let _ = kill(Pid::from_raw(-c.pid.as_raw()), Signal::SIGKILL);
        while !c.reports_closed {
            c.drain(&mut errors);
        }
    }
    reap_orphans();

    let mut ports: Vec<u16> = children.iter().flat_map(|c| c.ports.clone()).collect();
    ports.sort_unstable();
    ports.dedup();
    let [server, client] = children.map(|mut c| {
        if let Some((status, at_us)) = c.exited {
            c.facts.push(Fact {
                at_us: Some(at_us),
                ..Fact::new("exit", Value::from_wait(status))
            });
        }
        c.facts
    });
    PairOutcome {
        server,
        client,
        errors,
        timeout,
        steps,
        ports,
        host_sysctls: vec![],
    }
}

/// Release a barrier when both sides wait at it, or when one waits and the other has ended;
/// the release, stamped just before the sides are let go.
fn conduct_barriers(
    children: &mut [Child; 2],
    errors: &mut Vec<String>,
    deadline: &mut Instant,
    case: &Case,
) -> Option<StepMark> {
    let [server, client] = children;
    let origin = server.origin;
    let mark = |step: &str| StepMark {
        step: step.to_string(),
        at_us: origin.elapsed_us(),
    };
    match (&server.waiting, &client.waiting) {
        (Some((s_step, s_val)), Some((c_step, c_val))) => {
            if s_step != c_step {
                errors.push(format!(
                    "the sides' scripts disagree: server waits at '{s_step}', client at '{c_step}'"
                ));
                return None;
            }
            let (s_val, c_val, step) = (*s_val, *c_val, s_step.clone());
            let released = mark(&step);
            server.release(c_val, step.clone());
            client.release(s_val, step);
            *deadline = Instant::now() + case.step_deadline;
            Some(released)
        }
        (Some((step, _)), None) if client.finished() => {
            let step = step.clone();
            let released = mark(&step);
            server.release(0, step);
            Some(released)
        }
        (None, Some((step, _))) if server.finished() => {
            let step = step.clone();
            let released = mark(&step);
            client.release(0, step);
            Some(released)
        }
        _ => None,
    }
}

fn spawn_side(
    role: Role,
    case: &Case,
    kind: Kind,
    variant: Option<&'static Variant>,
    origin: Origin,
) -> Child {
    let side = match role {
        Role::Server => case.server,
        Role::Client => case.client,
    };
    let (reports_rx, reports_tx) = pipe();
    let (releases_rx, releases_tx) = pipe();
    let runner = nix::unistd::getpid();
    // Safe: the runner is single-threaded (asserted in `run_pair`), so the child is a full copy
    // with no lock held by a vanished thread; it may allocate, and it leaves only via `_exit`.
    // The child drops the runner's ends; the client also inherits the server's runner ends
    // (a read end and a release write end), which it never touches.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            drop(reports_rx);
            drop(releases_tx);
            side::run(
                runner,
                role,
                side,
                (kind, variant),
                reports_tx,
                releases_rx,
                origin,
            )
        }
        ForkResult::Parent { child } => {
            // Also set here, so that the group exists before the runner might kill it.
            let _ = nix::unistd::setpgid(child, child);
            Child {
                role,
                pid: child,
                reports: File::from(reports_rx),
                pending: vec![],
                releases: File::from(releases_tx),
                facts: vec![],
                ports: vec![],
                waiting: None,
                step: "setup".into(),
                call: None,
                reports_closed: false,
                exited: None,
                origin,
            }
        }
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe().expect("pipe")
}

fn kill_all(children: &mut [Child; 2]) {
    for c in children.iter_mut() {
        if !c.finished() {
            let _ = kill(Pid::from_raw(-c.pid.as_raw()), Signal::SIGKILL);
            let _ = kill(c.pid, Signal::SIGKILL);
            c.reap(None);
        }
    }
}

/// Reap anything the sides forked that was re-parented to us (we are a subreaper on Linux).
/// Their process groups were SIGKILLed just before, but death is not instant: wait for each,
/// killing any that escaped its group first, until no child is left.
fn reap_orphans() {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                for pid in children_of_self() {
                    let _ = kill(pid, Signal::SIGKILL);
                }
                let _ = waitpid(Pid::from_raw(-1), None);
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
}

/// Our children (live or not yet reaped) of every thread, from /proc (Linux); elsewhere none are
/// known, and the sides' process groups, already killed, are all there is.
pub fn children_of_self() -> Vec<Pid> {
    let tasks = std::fs::read_dir("/proc/self/task").into_iter().flatten();
    tasks
        .flatten()
        .flat_map(|task| {
            std::fs::read_to_string(task.path().join("children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .map(Pid::from_raw)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Fork is only safe from a single-threaded process; say so loudly if that ever changes.
pub(super) fn assert_single_threaded() {
    #[cfg(target_os = "linux")]
    {
        let threads = std::fs::read_dir("/proc/self/task")
            .map(|d| d.count())
            .unwrap_or(1);
        assert_eq!(
            threads, 1,
            "the case runner must be single-threaded before it forks"
        );
    }
}
