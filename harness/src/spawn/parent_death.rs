//! A child ends when the process that started it ends, also when that process is SIGKILLed and
//! can clean nothing up: Linux's `PR_SET_PDEATHSIG`, set in the child right after `fork` (before
//! `exec` where there is one), then a check that the parent has not died already, since the
//! signal only covers deaths after the `prctl` (`getppid()` would be a reaper's by then).
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not when its process
//! does (the kernel re-parents the child to a sibling thread and signals it). So a child must be
//! started by a thread that lives as long as the child: the runner and its sides are
//! single-threaded, `sockconf run`'s workers reap their own runners before they end, the tests'
//! threads wait for the `sockconf` they start, and a matrix worker waits for its qemu.
//!
//! The signal survives `execve` (except into a set-user-ID binary). FreeBSD's
//! `PROC_PDEATHSIG_CTL` is the same request (it follows the process, not the thread). macOS has
//! no such request; there the interrupt path (`sockconf run`'s signal handling) is all there is.

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::process::Command;

/// Ask for `signal` when the thread that forked us ends, and fail with `ESRCH` if our parent
/// `parent` has already died. Two syscalls and no allocation: async-signal-safe, so it may run
/// between `fork` and `exec`, or first thing in a forked child of a multi-threaded parent.
pub fn end_with_parent(parent: Pid, signal: Signal) -> nix::Result<()> {
    if ask_for_death_signal(signal)? && nix::unistd::getppid() != parent {
        return Err(nix::errno::Errno::ESRCH);
    }
    Ok(())
}

/// Ask the kernel for `signal` at the parent's death: true if it took the request, false where
/// the OS has no such request.
#[cfg(target_os = "linux")]
fn ask_for_death_signal(signal: Signal) -> nix::Result<bool> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong) } != 0 {
        return Err(nix::errno::Errno::last());
    }
    Ok(true)
}

#[cfg(target_os = "freebsd")]
fn ask_for_death_signal(signal: Signal) -> nix::Result<bool> {
    let mut signal = signal as libc::c_int;
    // SAFETY: PROC_PDEATHSIG_CTL reads one int through the pointer.
    let rc = unsafe {
        libc::procctl(
            libc::P_PID,
            0,
            libc::PROC_PDEATHSIG_CTL,
            &mut signal as *mut libc::c_int as *mut libc::c_void,
        )
    };
    if rc != 0 {
        return Err(nix::errno::Errno::last());
    }
    Ok(true)
}

#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
fn ask_for_death_signal(_signal: Signal) -> nix::Result<bool> {
    Ok(false)
}

/// Have the process that `command` starts end by `signal` when this process's spawning thread
/// ends (see the module's note on threads). A child whose parent died before it could ask fails
/// to start (`ESRCH`) instead of running unwatched.
pub fn command_ends_with_parent(command: &mut Command, signal: Signal) -> &mut Command {
    use std::os::unix::process::CommandExt;
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before exec and only calls
    // `end_with_parent`, which is async-signal-safe (two syscalls, no allocation, no lock).
    unsafe {
        command.pre_exec(move || {
            end_with_parent(parent, signal).map_err(|e| std::io::Error::from_raw_os_error(e as i32))
        })
    }
}
