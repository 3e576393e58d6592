//! What a forked side does: set its SIGPIPE disposition, run its script, report, `_exit`.

use crate::case::{Side, SigPipe, Variant};
use crate::kind::Kind;
use crate::observe::clock::Origin;
use crate::observe::protocol::Report;
use crate::observe::Role;
use crate::observe::{Ctx, Value};
use nix::sys::signal::{signal, SigHandler, Signal};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;

/// The side's report pipe, for the panic hook (which cannot borrow the Ctx).
static REPORT_FD: AtomicI32 = AtomicI32::new(-1);

/// Exit code of a side whose script panicked (setup went wrong); the runner reports the panic.
pub const SCRIPT_PANICKED: i32 = 70;

/// Exit code of a side whose runner died before the side could ask to die with it.
const RUNNER_GONE: i32 = 71;

/// Runs in the forked child of `runner`; never returns.
pub fn run(
    runner: nix::unistd::Pid,
    role: Role,
    side: Side,
    (kind, variant): (Kind, Option<&'static Variant>),
    to_runner: OwnedFd,
    from_runner: OwnedFd,
    origin: Origin,
) -> ! {
    // A group of its own, so that the runner can kill the side with anything it forked.
    let _ = nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0));
    // If the runner dies, so does the side; if it died already, the side has nothing to do.
    if super::parent_death::end_with_parent(runner, nix::sys::signal::Signal::SIGKILL).is_err() {
        // SAFETY: leave without running the runner's atexit handlers or destructors.
        unsafe { libc::_exit(RUNNER_GONE) };
    }
    REPORT_FD.store(to_runner.as_raw_fd(), Ordering::SeqCst);
    std::panic::set_hook(Box::new(|info| {
        let report = Report::Error {
            message: info.to_string(),
        };
        let mut line = serde_json::to_vec(&report).unwrap_or_default();
        line.push(b'\n');
        let fd = REPORT_FD.load(Ordering::SeqCst);
        // SAFETY: writing a buffer we own to our report pipe.
        unsafe { libc::write(fd, line.as_ptr().cast(), line.len()) };
    }));

    let mut ctx = Ctx::new(role, to_runner, from_runner, origin, variant, kind);
    // Explicit, always: the runner (a Rust binary) starts with SIGPIPE ignored, and that
    // disposition survives fork; a side must run under the one its case tests.
    // SAFETY: installing SIG_DFL/SIG_IGN, or signal-hook's handler, in a single-threaded child.
    unsafe {
        match side.sigpipe {
            SigPipe::Default => signal(Signal::SIGPIPE, SigHandler::SigDfl),
            SigPipe::Ignore => signal(Signal::SIGPIPE, SigHandler::SigIgn),
            SigPipe::CountingHandler => {
                let runs = Arc::new(AtomicUsize::new(0));
                let counter = runs.clone();
                // The action only touches an atomic: async-signal-safe.
                signal_hook::low_level::register(libc::SIGPIPE, move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                })
                .expect("register SIGPIPE handler");
                ctx.sigpipe_handler_runs = Some(runs);
                Ok(SigHandler::SigDfl)
            }
        }
    }
    .expect("set SIGPIPE disposition");

    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (side.run)(&mut ctx)));
    if outcome.is_err() {
        // The hook already sent the message.
        // SAFETY: leave without running the parent's atexit handlers or destructors.
        unsafe { libc::_exit(SCRIPT_PANICKED) };
    }
    if side.sigpipe == SigPipe::CountingHandler {
        let runs = ctx.sigpipe_handler_runs();
        ctx.record("sigpipe.handler_runs", Value::Count(runs));
    }
    ctx.report(&Report::Done);
    // SAFETY: as above. Open sockets are closed by the kernel at exit, as in any process.
    unsafe { libc::_exit(0) }
}
