//! Ctrl-C, SIGTERM and SIGHUP during `sockconf run` and `sockconf matrix`: end every process this
//! one started (runners, and through them their sides; qemu; anything else), remove the outputs
//! that are not complete, say what finished and what did not, and exit 128 + the signal's number
//! (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP).
//!
//! Signal dispositions are process-global, so [`install`] is called once, from `main`, for the
//! commands that start processes and write outputs (`run`, `matrix`), before any thread or child
//! exists. A runner (`run-case`) never installs it: it keeps the default actions (a Ctrl-C to the
//! process group ends it at once), and it dies with its parent through `PR_SET_PDEATHSIG` (see
//! `harness::spawn::parent_death`), also when the parent is SIGKILLed and can do none of this.
//!
//! signal-hook's iterator turns the signal into a message for one thread of ours, which does the
//! work in ordinary code, not in a signal handler. The rest of the program never has to take
//! part: a worker blocked reading a runner's pipe or waiting for apt-get cannot delay the exit.
//! The one thing the main flow does is write its outputs through [`outputs`], so that a signal
//! never cuts a report in half: it comes either before (nothing is written) or after (the run
//! is complete, and the signal is too late to interrupt it).

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long the ending of our children may take before we exit anyway (what is left then dies
/// with us: every child was started with `PR_SET_PDEATHSIG`).
const CHILDREN_DEADLINE: Duration = Duration::from_millis(800);

/// How long a signal waits for outputs that are being written when it comes.
const OUTPUTS_GRACE: Duration = Duration::from_millis(500);

#[derive(Default)]
struct State {
    /// When the run started, for the message.
    started: Option<Instant>,
    /// The signal being handled, once one has come.
    signal: Option<i32>,
    outputs: Outputs,
    /// Every child started by [`SpawnOwned::spawn_owned`] and not yet dropped.
    children: Vec<u32>,
    /// Outputs being written, removed on an interrupt.
    partial: Vec<PathBuf>,
    /// What the run does, for the message: a name and how far it got.
    tasks: Vec<(String, Progress)>,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Outputs {
    #[default]
    NotYet,
    Writing,
    Written,
}

#[derive(Clone, PartialEq, Eq)]
enum Progress {
    NotStarted,
    Running,
    Finished(String),
}

static STATE: Mutex<State> = Mutex::new(State {
    started: None,
    signal: None,
    outputs: Outputs::NotYet,
    children: vec![],
    partial: vec![],
    tasks: vec![],
});
static OUTPUTS_WRITTEN: Condvar = Condvar::new();

fn state() -> MutexGuard<'static, State> {
    // A panic elsewhere while holding the lock leaves plain data behind: keep going.
    STATE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Handle SIGINT, SIGTERM and SIGHUP from now on, on a thread of their own. On Linux this
/// process also becomes a child subreaper, so that whatever its runners leave behind when they
/// are killed (their sides, dying by PR_SET_PDEATHSIG) comes to it to be ended and reaped before
/// it exits, rather than to init.
pub fn install() {
    state().started = Some(Instant::now());
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]).expect("signal handlers");
    std::thread::Builder::new()
        .name("interrupt".into())
        .spawn(move || {
            for signal in signals.forever() {
                interrupt(signal);
            }
        })
        .expect("the interrupt thread");
}

/// The signal that interrupted the run, if one has.
pub fn interrupted() -> Option<i32> {
    state().signal
}

/// `Command::spawn` for the children of a run.
pub trait SpawnOwned {
    /// Start the command as a child that dies with this process (SIGKILL by
    /// `PR_SET_PDEATHSIG`; the calling thread must outlive it) and is ended by an interrupt.
    /// Once the run is interrupted, nothing more is started.
    fn spawn_owned(&mut self) -> std::io::Result<Started>;
}

impl SpawnOwned for Command {
    fn spawn_owned(&mut self) -> std::io::Result<Started> {
        if interrupted().is_some() {
            return Err(std::io::Error::other("interrupted"));
        }
        harness::spawn::parent_death::command_ends_with_parent(self, Signal::SIGKILL);
        let child = self.spawn()?;
        let mut state = state();
        if state.signal.is_some() {
            // The interrupt came while it started, and may have missed it.
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
        }
        state.children.push(child.id());
        Ok(Started {
            registered: Registered(child.id()),
            child,
        })
    }
}

/// A child from [`SpawnOwned::spawn_owned`]: a [`Child`] that an interrupt knows about until it
/// is dropped (drop it once it is reaped).
pub struct Started {
    child: Child,
    registered: Registered,
}

/// Forgets the pid when dropped.
struct Registered(u32);

impl Drop for Registered {
    fn drop(&mut self) {
        state().children.retain(|&p| p != self.0);
    }
}

impl std::ops::Deref for Started {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl std::ops::DerefMut for Started {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Started {
    /// [`Child::wait_with_output`].
    pub fn wait_with_output(self) -> std::io::Result<std::process::Output> {
        let Started { child, registered } = self;
        let out = child.wait_with_output();
        drop(registered);
        out
    }
}

/// Remove `path` if the run is interrupted (an output being written under a temporary name).
pub fn remove_if_interrupted(path: PathBuf) {
    state().partial.push(path);
}

/// An output file of the run (`--junit`, `--html`), created before the run so that a bad path
/// fails at once, under its partial name; renamed to its own once written whole, and removed if
/// the run is interrupted.
pub struct OutputFile {
    file: std::fs::File,
    partial: PathBuf,
    path: PathBuf,
}

impl OutputFile {
    pub fn create(path: &std::path::Path) -> std::io::Result<OutputFile> {
        let partial = harness::report::partial_path(path);
        let file = std::fs::File::create(&partial)?;
        remove_if_interrupted(partial.clone());
        Ok(OutputFile {
            file,
            partial,
            path: path.to_path_buf(),
        })
    }

    /// Write `contents` and rename the file into place.
    pub fn finish(mut self, contents: &[u8]) -> std::io::Result<()> {
        self.file
            .write_all(contents)
            .and_then(|()| std::fs::rename(&self.partial, &self.path))
    }
}

/// Not finished (an error, or the run ended early): the partial file goes (after a rename there
/// is none).
impl Drop for OutputFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.partial);
    }
}

/// A unit of the run (a case, a VM's boot) for the message an interrupt prints.
pub struct Task(usize);

/// Add a task that has not started yet.
pub fn task(name: impl Into<String>) -> Task {
    let mut state = state();
    state.tasks.push((name.into(), Progress::NotStarted));
    Task(state.tasks.len() - 1)
}

/// Once a signal has come, a task's progress stands as it was: what ends after it was ended by
/// the interrupt (a killed runner's "report" is not an outcome).
impl Task {
    pub fn running(&self) {
        self.set(Progress::Running);
    }

    /// Finished, with its outcome in a word or two (`pass`, `report`, `failed`).
    pub fn finished(&self, outcome: &str) {
        self.set(Progress::Finished(outcome.to_string()));
    }

    fn set(&self, progress: Progress) {
        let mut state = state();
        if state.signal.is_none() {
            state.tasks[self.0].1 = progress;
        }
    }
}

/// Call before writing the run's outputs (the report on stdout, the files renamed into place),
/// and keep until they are written. If the run has been interrupted, this never returns: the
/// interrupt thread is ending the process with the signal's exit code.
pub fn outputs() -> OutputsGuard {
    let mut state = state();
    if state.signal.is_some() {
        drop(state);
        loop {
            std::thread::park();
        }
    }
    state.outputs = Outputs::Writing;
    OutputsGuard(())
}

/// While it lives, a signal waits (up to [`OUTPUTS_GRACE`]) for the outputs to be written.
pub struct OutputsGuard(());

impl Drop for OutputsGuard {
    fn drop(&mut self) {
        state().outputs = Outputs::Written;
        OUTPUTS_WRITTEN.notify_all();
    }
}

/// The interrupt thread's work: end every child, remove the partial outputs, say what finished
/// and what did not, exit.
fn interrupt(signal: i32) {
    {
        let mut state = state();
        if state.outputs == Outputs::Writing {
            state = OUTPUTS_WRITTEN
                .wait_timeout_while(state, OUTPUTS_GRACE, |s| s.outputs == Outputs::Writing)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        if state.outputs == Outputs::Written {
            // The run is complete; the main thread exits with its own code.
            return;
        }
        state.signal = Some(signal);
    }
    let left = end_children();
    // A runner ended while it had a host sysctl set (`--allow-host-sysctl`) left its restore
    // file behind, and one of an AF_UNIX instance its socket's directory under $TMPDIR (no
    // private mount namespace): undo both now that no runner of this run is left to do it.
    let me = std::process::id();
    let restored = harness::spawn::undo_leftovers(|owner, _| owner == me);
    let state = state();
    let mut removed = vec![];
    for path in &state.partial {
        if std::fs::remove_file(path).is_ok() {
            removed.push(path.display().to_string());
        }
    }
    let name = Signal::try_from(signal).map_or("a signal", Signal::as_str);
    let mut message = summary(&state, name);
    if !removed.is_empty() {
        message.push_str(&format!(
            "sockconf: removed unfinished outputs: {}\n",
            removed.join(", ")
        ));
    }
    for line in restored {
        message.push_str(&format!("sockconf: {line}\n"));
    }
    if !left.is_empty() {
        message.push_str(&format!(
            "sockconf: still ending after {} ms (they die with this process): {left:?}\n",
            CHILDREN_DEADLINE.as_millis()
        ));
    }
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(message.as_bytes());
    let _ = stderr.flush();
    // SAFETY: leave at once, without running atexit handlers while other threads run; the
    // outputs the main thread may have buffered are exactly what must not come out.
    unsafe { libc::_exit(128 + signal) }
}

/// What finished and what did not, a line each.
fn summary(state: &State, signal: &str) -> String {
    let after = state
        .started
        .map(|s| format!(" after {:.1} s", s.elapsed().as_secs_f64()))
        .unwrap_or_default();
    let mut finished = vec![];
    let mut running = vec![];
    let mut not_started = vec![];
    for (name, progress) in &state.tasks {
        match progress {
            Progress::Finished(outcome) => finished.push(format!("{name} ({outcome})")),
            Progress::Running => running.push(name.clone()),
            Progress::NotStarted => not_started.push(name.clone()),
        }
    }
    let mut out = format!(
        "sockconf: interrupted by {signal}{after}: {} finished, {} interrupted, {} not started; no report was printed\n",
        finished.len(),
        running.len(),
        not_started.len()
    );
    for (what, names) in [
        ("finished", finished),
        ("interrupted", running),
        ("not started", not_started),
    ] {
        if !names.is_empty() {
            out.push_str(&format!("sockconf: {what}: {}\n", names.join(", ")));
        }
    }
    out
}

/// SIGKILL every child we started, and on Linux every child we have at all (also those adopted
/// as a subreaper), reaping them, until none is left or [`CHILDREN_DEADLINE`]. The pids still
/// there at the deadline.
fn end_children() -> Vec<i32> {
    for pid in state().children.clone() {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    #[cfg(target_os = "linux")]
    {
        use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
        let deadline = Instant::now() + CHILDREN_DEADLINE;
        loop {
            // Reap what has died (the workers waiting for those children get ECHILD, and are
            // never heard of again: the process exits).
            while let Ok(status) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                if status == WaitStatus::StillAlive {
                    break;
                }
            }
            let children = harness::spawn::children_of_self();
            if children.is_empty() || Instant::now() > deadline {
                return children.iter().map(|p| p.as_raw()).collect();
            }
            for pid in children {
                let _ = kill(pid, Signal::SIGKILL);
            }
            // Death takes the kernel a moment (closing sockets, releasing a capture): poll it,
            // within the deadline above.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    #[cfg(not(target_os = "linux"))]
    vec![]
}
