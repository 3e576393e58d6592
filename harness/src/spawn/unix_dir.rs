//! The private directory an AF_UNIX instance's socket file lives in, and its removal whatever
//! happens to the run.
//!
//! On Linux, where the runner could make a user or network namespace of its own, it also
//! unshares a mount namespace (propagation private, so that nothing reaches the host's), and
//! mounts a tmpfs on /tmp there: the socket file lives in that tmpfs, which exists in the
//! runner's namespace only and vanishes with it, whether the runner ends, panics, times out
//! or is SIGKILLed. Nothing of it is ever on the host's filesystems.
//!
//! Elsewhere (macOS, FreeBSD, a Linux without namespaces, `SOCKCONF_ISOLATION=host`) the
//! directory is made with mkdtemp(3) under $TMPDIR, named after the `sockconf run` that owns
//! the runner and the runner itself, as host sysctl restore files are
//! (`sockconf-unix.<owner pid>.<runner pid>.XXXXXX`), and removed:
//! - by the runner when the instance ends, and from a drop guard while a panic unwinds
//!   ([`RemoveOnDrop`]); a variant's sub-runner removes its own before it exits;
//! - by the owner, when a runner dies without reporting (SIGKILL, its backstop alarm), and
//!   when the run is interrupted (Ctrl-C, SIGTERM: `src/interrupt.rs`);
//! - by the next `sockconf run`, when the owner was SIGKILLed too ([`remove_leftovers`] of
//!   owners and runners that are both dead).

use crate::report::Isolation;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where the tmpfs is mounted in the runner's own mount namespace: a directory every Linux
/// system has (the matrix's guest mounts one too), short enough for sun_path.
#[cfg(target_os = "linux")]
const PRIVATE_MOUNT: &str = "/tmp";

/// How the names of fallback directories start, under $TMPDIR.
const PREFIX: &str = "sockconf-unix.";

/// The socket file's name inside the directory.
const SOCKET_NAME: &str = "socket";

/// This process's directory, and whether it must remove it (a fallback under $TMPDIR) or it
/// vanishes with the namespace (a private tmpfs). Set before the sides are forked, so that
/// they inherit it.
static CURRENT: Mutex<Option<(PathBuf, bool)>> = Mutex::new(None);

fn current() -> std::sync::MutexGuard<'static, Option<(PathBuf, bool)>> {
    CURRENT.lock().unwrap_or_else(|p| p.into_inner())
}

/// Make this (single-threaded, freshly isolated) runner's directory for AF_UNIX sockets. A
/// note for the report on where it is, or why none could be made.
pub fn make(isolation: &Isolation) -> Result<String, String> {
    #[cfg(target_os = "linux")]
    if !matches!(isolation, Isolation::Host { .. }) {
        match private_tmpfs() {
            Ok(()) => {
                *current() = Some((PathBuf::from(PRIVATE_MOUNT), false));
                return Ok(format!(
                    "the AF_UNIX socket lives in a tmpfs on {PRIVATE_MOUNT} in the case's own \
                     mount namespace: it never exists on the host"
                ));
            }
            Err(e) => {
                let dir = fallback()?;
                return Ok(format!(
                    "no private mount namespace ({e}): the AF_UNIX socket lives in {}, removed \
                     when the case ends",
                    dir.display()
                ));
            }
        }
    }
    let _ = isolation;
    let dir = fallback()?;
    Ok(format!(
        "the AF_UNIX socket lives in {}, removed when the case ends",
        dir.display()
    ))
}

/// unshare(CLONE_NEWNS), make every mount private (so that nothing done here propagates to
/// the host's namespace), and mount a fresh tmpfs on [`PRIVATE_MOUNT`], readable by this
/// runner's user only.
#[cfg(target_os = "linux")]
fn private_tmpfs() -> Result<(), String> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("making / private: {e}"))?;
    mount(
        Some("sockconf"),
        PRIVATE_MOUNT,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=0700,size=64k"),
    )
    .map_err(|e| format!("mounting a tmpfs on {PRIVATE_MOUNT}: {e}"))
}

/// mkdtemp(3) under $TMPDIR, named after the owner and this runner; recorded for removal.
fn fallback() -> Result<PathBuf, String> {
    let owner = super::host_sysctl::owner_pid();
    let template =
        std::env::temp_dir().join(format!("{PREFIX}{owner}.{}.XXXXXX", std::process::id()));
    let dir = nix::unistd::mkdtemp(&template)
        .map_err(|e| format!("mkdtemp({}): {e}", template.display()))?;
    *current() = Some((dir.clone(), true));
    Ok(dir)
}

/// The pathname the sides bind and connect to, in this runner's directory.
///
/// # Panics
/// Outside an AF_UNIX instance, where the runner made no directory.
pub fn socket_path() -> PathBuf {
    current()
        .as_ref()
        .map(|(dir, _)| dir.join(SOCKET_NAME))
        .expect("no AF_UNIX directory: the instance's kind is not AF_UNIX")
}

/// Remove this process's directory if it made one under $TMPDIR (the tmpfs goes with the
/// namespace); a failure, in a line.
pub fn remove_own() -> Option<String> {
    let (dir, remove) = current().take()?;
    if !remove {
        return None;
    }
    std::fs::remove_dir_all(&dir)
        .err()
        .filter(|e| e.kind() != std::io::ErrorKind::NotFound)
        .map(|e| format!("cannot remove {}: {e}", dir.display()))
}

/// Removes this process's directory when dropped, also while a panic unwinds. Forked sides
/// inherit it but leave through `_exit`, never dropping it.
pub struct RemoveOnDrop;

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(e) = remove_own() {
            eprintln!("sockconf: {e}");
        }
    }
}

/// Remove the fallback directories under $TMPDIR whose (owner, runner) pids `pick` chooses;
/// what was removed or could not be, one line each.
pub fn remove_leftovers(pick: impl Fn(u32, u32) -> bool) -> Vec<String> {
    leftovers_in(&std::env::temp_dir(), pick)
}

fn leftovers_in(tmp: &Path, pick: impl Fn(u32, u32) -> bool) -> Vec<String> {
    super::host_sysctl::left_by(tmp, PREFIX, pick)
        .into_iter()
        .map(|(path, _, runner)| match std::fs::remove_dir_all(&path) {
            Ok(()) => format!(
                "removed {} (runner {runner} ended without removing it)",
                path.display()
            ),
            Err(e) => format!("cannot remove {}: {e}", path.display()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory left by a dead runner is found by its owner's pid and its own, and
    /// removed with the socket file in it; others are left alone.
    #[test]
    fn leftovers_are_found_by_owner_and_runner() {
        let tmp = std::env::temp_dir().join(format!("sockconf-unix-test.{}", std::process::id()));
        let (owner, runner) = (u32::MAX - 1, u32::MAX - 2);
        let mine = tmp.join(format!("{PREFIX}{owner}.{runner}.abcdef"));
        let other = tmp.join(format!("{PREFIX}{owner}.7.abcdef"));
        for dir in [&mine, &other] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(SOCKET_NAME), b"").unwrap();
        }
        let lines = leftovers_in(&tmp, |o, r| (o, r) == (owner, runner));
        let (mine_left, other_left) = (mine.exists(), other.exists());
        let _ = std::fs::remove_dir_all(&tmp);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("removed "), "{lines:?}");
        assert!(!mine_left);
        assert!(other_left);
    }
}
