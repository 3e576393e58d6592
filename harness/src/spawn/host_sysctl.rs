//! Host sysctls ([`Need::HostSysctl`]) on an OS without network namespaces: never changed by
//! default; with the opt-in (`sockconf run --allow-host-sysctl`, for throwaway CI VMs) set for
//! the case and restored when it ends.
//!
//! Who restores, whatever happens:
//! - the runner that set a value restores it when the pair is done, and from a drop guard when
//!   it panics ([`RestoreOnDrop`]); a variant's sub-runner restores its own before it exits;
//! - before it changes anything, the runner writes the old value to a restore file in /tmp
//!   named after its owner (the `sockconf run` that started it, [`OWNER_ENV`]) and itself. A
//!   runner killed mid-case (its backstop alarm, SIGKILL, Ctrl-C, which reaches the whole
//!   process group) leaves the file behind, and its owner, which outlives it (it waits for
//!   its runners and ignores SIGINT/SIGTERM while a host sysctl may be set, [`watch_signals`]),
//!   restores it as soon as the runner is gone and again before it exits;
//! - if the owner dies too (SIGKILL), the next `sockconf run` restores files whose owner and
//!   runner are both dead before it starts.
//!
//! `sockconf run` runs the cases that change a host sysctl one at a time, after the others,
//! so that no other case runs under a value it did not ask for.

use crate::case::{Case, Need};
use crate::platform::Os;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// Set by `sockconf run` on the runners it starts: its pid, which owns their restore files.
pub const OWNER_ENV: &str = "SOCKCONF_RUN_PID";

/// Where restore files go, and how their names start:
/// `sockconf-host-sysctl.<owner pid>.<runner pid>.<n>.json`.
const RESTORE_DIR: &str = "/tmp";
const PREFIX: &str = "sockconf-host-sysctl.";

/// The opt-in, given to this runner on its command line.
static ALLOWED: AtomicBool = AtomicBool::new(false);
/// The values this process changed and has not restored yet, with their restore files.
static CHANGED: Mutex<Vec<(HostSysctlChange, PathBuf)>> = Mutex::new(vec![]);
static SEQ: AtomicU32 = AtomicU32::new(0);

/// A host sysctl a case ran under: its name, the value it had, the value set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSysctlChange {
    pub name: String,
    pub was: String,
    pub set: String,
}

/// What a restore file holds: the change, and the old value's bytes as the kernel gave them.
#[derive(Serialize, Deserialize)]
struct RestoreFile {
    change: HostSysctlChange,
    old_bytes: Vec<u8>,
}

/// The host sysctls that shape teardown on FreeBSD and macOS, reported in the run's
/// environment as Linux's are. Each is declared in the named release: FreeBSD stable/14
/// (sys/kern/uipc_socket.c, sys/netinet/tcp_timer.c, tcp_subr.c, tcp_timewait.c, tcp_input.c,
/// tcp_syncache.c, tcp_usrreq.c), XNU xnu-11417.121.6 (bsd/kern/uipc_socket.c,
/// bsd/netinet/tcp_timer.c, tcp_input.c, tcp_usrreq.c); one an OS lacks is left out.
pub const OF_INTEREST: &[&str] = &[
    "kern.ipc.somaxconn",
    "kern.ipc.soacceptqueue",
    "net.inet.tcp.msl",
    "net.inet.tcp.finwait2_timeout",
    "net.inet.tcp.fast_finwait2_recycle",
    "net.inet.tcp.nolocaltimewait",
    "net.inet.tcp.fin_timeout",
    "net.inet.tcp.keepinit",
    "net.inet.tcp.keepidle",
    "net.inet.tcp.keepintvl",
    "net.inet.tcp.keepcnt",
    "net.inet.tcp.always_keepalive",
    "net.inet.tcp.blackhole",
    "net.inet.tcp.syncookies",
    "net.inet.tcp.sendspace",
    "net.inet.tcp.recvspace",
];

/// The values of [`OF_INTEREST`] this OS has (none where sysctlbyname(3) is not used).
pub fn read_of_interest() -> std::collections::BTreeMap<String, String> {
    if !cfg!(any(target_os = "freebsd", target_os = "macos")) {
        return Default::default();
    }
    OF_INTEREST
        .iter()
        .filter_map(|name| {
            imp::read(name)
                .ok()
                .map(|bytes| (name.to_string(), imp::decode(&bytes)))
        })
        .collect()
}

/// Let this runner change the host sysctls its cases declare (`--allow-host-sysctl`).
pub fn allow() {
    ALLOWED.store(true, Ordering::SeqCst);
}

pub fn allowed() -> bool {
    ALLOWED.load(Ordering::SeqCst)
}

/// The host sysctls `case` (or one of its variants) needs on this OS.
pub fn needed_by(case: &Case) -> Vec<(&'static str, &'static str)> {
    case.needs
        .iter()
        .chain(case.variants.iter().flat_map(|v| v.needs))
        .filter_map(|n| match *n {
            Need::HostSysctl(os, name, value) if os == Os::current() => Some((name, value)),
            _ => None,
        })
        .collect()
}

/// Set `name` to `value` for this case, after writing the old value where it will be found if
/// this process dies. The change, or why it could not be made.
pub fn set(name: &str, value: &str) -> Result<HostSysctlChange, String> {
    let old = imp::read(name).map_err(|e| format!("cannot read sysctl {name}: {e}"))?;
    let new = imp::encode(value, &old).map_err(|e| format!("sysctl {name}={value}: {e}"))?;
    let change = HostSysctlChange {
        name: name.to_string(),
        was: imp::decode(&old),
        set: value.to_string(),
    };
    let path = restore_path(std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst));
    let file = RestoreFile {
        change: change.clone(),
        old_bytes: old,
    };
    std::fs::write(&path, serde_json::to_vec(&file).expect("serialises"))
        .map_err(|e| format!("cannot write the restore file {}: {e}", path.display()))?;
    if let Err(e) = imp::write(name, &new) {
        let _ = std::fs::remove_file(&path);
        return Err(format!("cannot set sysctl {name}={value}: {e}"));
    }
    CHANGED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((change.clone(), path));
    Ok(change)
}

/// The changes this process made and has not restored.
pub fn changes() -> Vec<HostSysctlChange> {
    CHANGED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(c, _)| c.clone())
        .collect()
}

/// Put back every value this process changed, newest first; the failures, one line each.
pub fn restore_all() -> Vec<String> {
    let changed = std::mem::take(&mut *CHANGED.lock().unwrap_or_else(|p| p.into_inner()));
    changed
        .into_iter()
        .rev()
        .filter_map(|(_, path)| restore_file(&path).err())
        .collect()
}

/// Restores whatever this process changed when dropped, also while a panic unwinds. Forked
/// sides inherit it but leave through `_exit`, never dropping it.
pub struct RestoreOnDrop;

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        for e in restore_all() {
            eprintln!("sockconf: {e}");
        }
    }
}

fn restore_path(runner: u32, seq: u32) -> PathBuf {
    let owner = owner_pid();
    Path::new(RESTORE_DIR).join(format!("{PREFIX}{owner}.{runner}.{seq}.json"))
}

/// The `sockconf run` that owns this runner and cleans up after it: [`OWNER_ENV`], or the
/// parent (a runner is started by its owner).
pub fn owner_pid() -> u32 {
    std::env::var(OWNER_ENV)
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .unwrap_or_else(|| nix::unistd::getppid().as_raw() as u32)
}

/// Write back the value a restore file holds, then remove it. What was restored.
fn restore_file(path: &Path) -> Result<HostSysctlChange, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file: RestoreFile =
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    imp::write(&file.change.name, &file.old_bytes).map_err(|e| {
        format!(
            "cannot restore sysctl {} to {} (restore file {} kept): {e}",
            file.change.name,
            file.change.was,
            path.display()
        )
    })?;
    let _ = std::fs::remove_file(path);
    Ok(file.change)
}

/// Restore the values left in restore files whose (owner, runner) pids `pick` chooses; what
/// was restored or failed, one line each.
pub fn restore_leftovers(pick: impl Fn(u32, u32) -> bool) -> Vec<String> {
    let mut lines = vec![];
    for (path, _, runner) in left_by(Path::new(RESTORE_DIR), PREFIX, pick) {
        lines.push(match restore_file(&path) {
            Ok(c) => format!(
                "restored host sysctl {} to {} (runner {runner} set it to {} and did not restore it)",
                c.name, c.was, c.set
            ),
            Err(e) => e,
        });
    }
    lines
}

/// The entries of `dir` named `<prefix><owner pid>.<runner pid>...` whose pids `pick` chooses:
/// what a runner leaves for its owner, or the next run, to clean up when it cannot (restore
/// files here, AF_UNIX directories in `unix_dir`). Each with its owner and runner pid.
pub(crate) fn left_by(
    dir: &Path,
    prefix: &str,
    pick: impl Fn(u32, u32) -> bool,
) -> Vec<(PathBuf, u32, u32)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let mut pids = name
                .strip_prefix(prefix)?
                .split('.')
                .map(|p| p.parse::<u32>().ok());
            let (Some(Some(owner)), Some(Some(runner))) = (pids.next(), pids.next()) else {
                return None;
            };
            pick(owner, runner).then(|| (entry.path(), owner, runner))
        })
        .collect()
}

/// Whether a process with this pid exists.
pub fn alive(pid: u32) -> bool {
    use nix::errno::Errno;
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(Errno::ESRCH)
    )
}

/// Catch SIGINT and SIGTERM instead of dying of them, so that the owner of the runners lives
/// to restore what they leave behind; the flag turns true when one arrives.
pub fn watch_signals() -> std::io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [libc::SIGINT, libc::SIGTERM] {
        signal_hook::flag::register(sig, flag.clone())?;
    }
    Ok(flag)
}

/// sysctlbyname(3): values are the kernel's bytes; integers (1, 2, 4 or 8 bytes wide: a
/// SYSCTL_BOOL is one byte on FreeBSD, most are 4) are written at the width they are read.
#[cfg(any(target_os = "freebsd", target_os = "macos"))]
mod imp {
    use std::ffi::CString;
    use std::io;

    pub fn read(name: &str) -> io::Result<Vec<u8>> {
        crate::observe::pcblist::read_sysctl(name)
    }

    pub fn write(name: &str, bytes: &[u8]) -> io::Result<()> {
        let c = CString::new(name).map_err(io::Error::other)?;
        // SAFETY: the kernel reads `bytes.len()` bytes from `bytes`; no old value is asked for.
        let rc = unsafe {
            libc::sysctlbyname(
                c.as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                bytes.as_ptr() as *mut libc::c_void,
                bytes.len(),
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub fn encode(value: &str, old: &[u8]) -> Result<Vec<u8>, String> {
        super::encode_int(value, old.len())
    }

    pub fn decode(bytes: &[u8]) -> String {
        super::decode_int(bytes)
    }
}

/// Linux has its namespaces' sysctls ([`Need::Sysctl`]); a HostSysctl declared for Linux is
/// the text under /proc/sys.
#[cfg(not(any(target_os = "freebsd", target_os = "macos")))]
mod imp {
    use std::io;

    fn path(name: &str) -> String {
        format!("/proc/sys/{}", name.replace('.', "/"))
    }

    pub fn read(name: &str) -> io::Result<Vec<u8>> {
        std::fs::read(path(name))
    }

    pub fn write(name: &str, bytes: &[u8]) -> io::Result<()> {
        std::fs::write(path(name), bytes)
    }

    pub fn encode(value: &str, _old: &[u8]) -> Result<Vec<u8>, String> {
        Ok(value.as_bytes().to_vec())
    }

    pub fn decode(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).trim().to_string()
    }
}

/// `value` as a native-endian integer `width` bytes wide (the width the kernel gave the old
/// value in).
pub fn encode_int(value: &str, width: usize) -> Result<Vec<u8>, String> {
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not an integer"))?;
    let fits = match width {
        1 => i8::try_from(n).is_ok() || u8::try_from(n).is_ok(),
        2 => i16::try_from(n).is_ok() || u16::try_from(n).is_ok(),
        4 => i32::try_from(n).is_ok() || u32::try_from(n).is_ok(),
        8 => true,
        _ => return Err(format!("a {width}-byte value is not an integer sysctl")),
    };
    if !fits {
        return Err(format!("{n} does not fit the sysctl's {width} bytes"));
    }
    let bytes = n.to_ne_bytes();
    Ok(if cfg!(target_endian = "little") {
        bytes[..width].to_vec()
    } else {
        bytes[8 - width..].to_vec()
    })
}

/// A native-endian integer of 1, 2, 4 or 8 bytes, signed, as text; other widths as bytes.
pub fn decode_int(bytes: &[u8]) -> String {
    match bytes.len() {
        1 => (bytes[0] as i8).to_string(),
        2 => i16::from_ne_bytes([bytes[0], bytes[1]]).to_string(),
        4 => i32::from_ne_bytes(bytes.try_into().expect("4")).to_string(),
        8 => i64::from_ne_bytes(bytes.try_into().expect("8")).to_string(),
        _ => format!("{bytes:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_keep_the_width_the_kernel_gave() {
        assert_eq!(encode_int("0", 1).unwrap(), [0]);
        assert_eq!(decode_int(&encode_int("2000", 4).unwrap()), "2000");
        assert_eq!(decode_int(&encode_int("-1", 8).unwrap()), "-1");
        assert!(encode_int("300", 1).is_err());
        assert!(encode_int("x", 4).is_err());
        assert!(encode_int("1", 3).is_err());
    }

    /// A restore file left by a dead runner is found by its owner's pid and its own. A test
    /// must not change a real sysctl, so this file names one that does not exist: the restore
    /// fails, and the file is kept and the failure named rather than the value lost.
    #[test]
    fn a_leftover_that_cannot_be_restored_is_kept_and_named() {
        let (owner, runner) = (u32::MAX - 1, u32::MAX - 2);
        let path = Path::new(RESTORE_DIR).join(format!("{PREFIX}{owner}.{runner}.0.json"));
        let file = RestoreFile {
            change: HostSysctlChange {
                name: "sockconf.no.such.sysctl".into(),
                was: "1".into(),
                set: "0".into(),
            },
            old_bytes: b"1".to_vec(),
        };
        std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
        let lines = restore_leftovers(|o, r| (o, r) == (owner, runner));
        assert!(path.exists());
        let _ = std::fs::remove_file(&path);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("cannot restore sysctl sockconf.no.such.sysctl to 1"));
        assert!(!alive(u32::MAX - 2));
        assert!(alive(std::process::id()));
    }
}
