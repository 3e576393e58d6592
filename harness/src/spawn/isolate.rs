//! Give the case a network of its own: a fresh network namespace with loopback up, where the
//! case may write sysctls that die with it.

use crate::report::Isolation;

/// Set to `host` to skip the namespace and use host loopback (what macOS does anyway).
pub const FORCE_HOST_ENV: &str = "SOCKCONF_ISOLATION";

/// Move this (single-threaded) process into a new network namespace, as root or through a user
/// namespace, and bring loopback up. Falls back to the host's network and says why.
pub fn isolate() -> Isolation {
    if std::env::var(FORCE_HOST_ENV).as_deref() == Ok("host") {
        return Isolation::Host {
            why: format!("{FORCE_HOST_ENV}=host"),
        };
    }
    imp::isolate()
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use nix::sched::{unshare, CloneFlags};

    pub fn isolate() -> Isolation {
        let isolation = match unshare(CloneFlags::CLONE_NEWNET) {
            Ok(()) => Isolation::Netns,
            Err(root_err) => {
                // Unprivileged: a user namespace makes us root over a network namespace of our own.
                let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
                match unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET) {
                    Ok(()) => match map_ids(uid.as_raw(), gid.as_raw()) {
                        Ok(()) => Isolation::UserNetns,
                        Err(e) => {
                            return Isolation::Host {
                                why: format!("user namespace id maps: {e}"),
                            }
                        }
                    },
                    Err(user_err) => {
                        return Isolation::Host {
                            why: format!(
                                "unshare(CLONE_NEWNET): {root_err:?}; unshare(CLONE_NEWUSER|CLONE_NEWNET): {user_err:?}"
                            ),
                        }
                    }
                }
            }
        };
        match crate::spawn::netdev::set_up("lo", true) {
            Ok(()) => isolation,
            // A namespace without loopback is useless, and we cannot go back to the host's.
            Err(e) => panic!("bringing lo up in the new namespace: {e:?}"),
        }
    }

    /// Map our ids to root inside the new user namespace (what `unshare -r` does).
    fn map_ids(uid: u32, gid: u32) -> std::io::Result<()> {
        std::fs::write("/proc/self/setgroups", "deny")?;
        std::fs::write("/proc/self/uid_map", format!("0 {uid} 1"))?;
        std::fs::write("/proc/self/gid_map", format!("0 {gid} 1"))
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    pub fn isolate() -> Isolation {
        Isolation::Host {
            why: format!("no network namespaces on {}", std::env::consts::OS),
        }
    }
}

/// Write a sysctl of the case's own namespace (`net/core/somaxconn`, say). Only ever called
/// after [`isolate`] gave a namespace.
pub fn write_sysctl(path: &str, value: &str) -> std::io::Result<()> {
    std::fs::write(format!("/proc/sys/{path}"), value)
}

/// Read a sysctl as text, trimmed.
pub fn read_sysctl(path: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/sys/{path}"))
        .ok()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
}
