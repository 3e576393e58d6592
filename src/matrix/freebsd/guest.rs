//! PID 1 of the FreeBSD VM: the static sockconf the ISO holds as /sbin/init.
//!
//! The kernel starts init with no open descriptors and no arguments we choose (`/sbin/init`,
//! perhaps `-s`), so this is entered from `main` by PID alone, and reads its settings from a
//! file on the CD. It opens the console itself, mounts a tmpfs on /tmp (the CD root is
//! read-only; AF_UNIX paths need a writable place), brings lo0 up, and then stays the
//! reaper: a forked child runs the suite on the VM's own network stack and writes the run
//! document to the report port, while PID 1 reaps every process that ends (orphans of the
//! cases' sides come to it) until that child is gone, and powers the machine off. PID 1 never
//! returns: the kernel panics when init exits.
//!
//! Why the VM's own stack and not a VNET jail per case: the column is meant to show what
//! `sockconf run` observes on a FreeBSD machine, and there it runs on the host's stack (no
//! namespaces), with `Need::HostSysctl` sysctls set host-wide and restored. Jails would run
//! another code path than the one a FreeBSD user gets, and some of the sysctls the cases
//! set are not per-VNET. The VM is disposable, so the host-wide sysctls may be set there.

/// The guest's settings, one `key=value` a line, written onto the CD by the host.
pub const SETTINGS: &str = "/etc/sockconf-guest.conf";
/// COM2: the kernel writes nothing there, so nothing can land inside the report.
#[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
pub const REPORT_PORT: &str = "/dev/ttyu1";

/// What the host tells the guest through [`SETTINGS`].
#[derive(Debug, PartialEq, Eq)]
pub struct Settings {
    /// How many cases run at once.
    pub jobs: usize,
    /// Set host-wide sysctls the cases declare (`Need::HostSysctl`): the VM is disposable.
    pub allow_host_sysctl: bool,
}

impl Settings {
    pub fn render(&self) -> String {
        format!(
            "jobs={}\nallow_host_sysctl={}\n",
            self.jobs, self.allow_host_sysctl
        )
    }

    /// Unknown keys are ignored, missing ones keep their defaults (one case at a time, no
    /// host sysctls).
    #[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
    pub fn parse(text: &str) -> Settings {
        let mut settings = Settings {
            jobs: 1,
            allow_host_sysctl: false,
        };
        for line in text.lines() {
            match line.split_once('=') {
                Some(("jobs", n)) => settings.jobs = n.trim().parse().unwrap_or(1).max(1),
                Some(("allow_host_sysctl", b)) => settings.allow_host_sysctl = b.trim() == "true",
                _ => {}
            }
        }
        settings
    }
}

#[cfg(target_os = "freebsd")]
pub use imp::init;

#[cfg(target_os = "freebsd")]
mod imp {
    use super::*;
    use std::ffi::CStr;
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd};

    /// PID 1: set the machine up, run the suite in a child, reap, power off. Never returns.
    pub fn init() -> ! {
        console();
        let settings = Settings::parse(&std::fs::read_to_string(SETTINGS).unwrap_or_default());
        eprintln!(
            "sockconf: FreeBSD guest init, {settings:?}, linked against {}",
            super::super::build::LINKED_AGAINST.unwrap_or("(unknown)")
        );
        if let Err(e) = mount_tmpfs(c"/tmp") {
            eprintln!("sockconf: mount tmpfs on /tmp: {e}");
        }
        if let Err(e) = loopback_up() {
            eprintln!("sockconf: bringing lo0 up: {e}");
        }
        // Safe: PID 1 has started no thread yet (main calls this before anything else), so the
        // child is a complete copy; it runs the suite and exits, never returning here.
        match unsafe { libc::fork() } {
            -1 => eprintln!(
                "sockconf: fork: {}; no suite",
                std::io::Error::last_os_error()
            ),
            0 => {
                let code = run_suite(&settings);
                // SAFETY: ends the child at once; its output is flushed by run_suite.
                unsafe { libc::_exit(code) }
            }
            suite => reap_until(suite),
        }
        power_off()
    }

    /// The kernel opened nothing for init: the console becomes stdin, stdout and stderr.
    fn console() {
        // SAFETY: open and dup2 on a NUL-terminated path and our own descriptors.
        unsafe {
            let fd = libc::open(c"/dev/console".as_ptr(), libc::O_RDWR);
            if fd >= 0 {
                for target in 0..3 {
                    if fd != target {
                        libc::dup2(fd, target);
                    }
                }
                if fd > 2 {
                    libc::close(fd);
                }
            }
        }
    }

    /// nmount(2) of a tmpfs: its parameters are name/value pairs of iovecs.
    fn mount_tmpfs(path: &CStr) -> std::io::Result<()> {
        let pairs: [(&CStr, &CStr); 2] = [(c"fstype", c"tmpfs"), (c"fspath", path)];
        let mut iov: Vec<libc::iovec> = pairs
            .iter()
            .flat_map(|(k, v)| [*k, *v])
            .map(|s| libc::iovec {
                iov_base: s.as_ptr() as *mut libc::c_void,
                iov_len: s.to_bytes_with_nul().len(),
            })
            .collect();
        // SAFETY: every iovec points at a live, NUL-terminated string; nmount only reads them.
        let rc = unsafe { libc::nmount(iov.as_mut_ptr(), iov.len() as libc::c_uint, 0) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// `struct in_aliasreq` of <netinet/in_var.h>; the libc crate does not have it.
    #[repr(C)]
    struct InAliasreq {
        name: [libc::c_char; libc::IFNAMSIZ],
        addr: libc::sockaddr_in,
        broadaddr: libc::sockaddr_in,
        mask: libc::sockaddr_in,
        vhid: libc::c_int,
    }

    fn sockaddr_in(addr: [u8; 4]) -> libc::sockaddr_in {
        // SAFETY: sockaddr_in is plain data; all zeroes is a valid value.
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sin.sin_len = std::mem::size_of::<libc::sockaddr_in>() as u8;
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_addr.s_addr = u32::from_ne_bytes(addr);
        sin
    }

    fn ifname() -> [libc::c_char; libc::IFNAMSIZ] {
        let mut name = [0; libc::IFNAMSIZ];
        for (to, from) in name.iter_mut().zip(b"lo0") {
            *to = *from as libc::c_char;
        }
        name
    }

    /// lo0 exists but has no address and is down: 127.0.0.1/8 by SIOCAIFADDR, then IFF_UP by
    /// SIOCSIFFLAGS. IPv6 attaches ::1 by itself once the interface is up.
    fn loopback_up() -> std::io::Result<()> {
        // SAFETY: socket(2) with constant arguments; the descriptor is owned at once.
        let socket = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
        check(socket)?;
        // SAFETY: a descriptor just opened and owned by nothing else.
        let socket = unsafe { std::os::fd::OwnedFd::from_raw_fd(socket) };
        let fd = socket.as_raw_fd();
        let alias = InAliasreq {
            name: ifname(),
            addr: sockaddr_in([127, 0, 0, 1]),
            broadaddr: sockaddr_in([127, 255, 255, 255]),
            mask: sockaddr_in([255, 0, 0, 0]),
            vhid: 0,
        };
        let siocaifaddr = nix::request_code_write!(b'i', 43, std::mem::size_of::<InAliasreq>());
        // SAFETY: the request's size is the struct's; the kernel reads it only.
        check(unsafe { libc::ioctl(fd, siocaifaddr, &alias) })?;
        // SAFETY: ifreq is plain data; all zeroes is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        ifr.ifr_name = ifname();
        let siocgifflags =
            nix::request_code_readwrite!(b'i', 17, std::mem::size_of::<libc::ifreq>());
        let siocsifflags = nix::request_code_write!(b'i', 16, std::mem::size_of::<libc::ifreq>());
        // SAFETY: ifreq of the requests' size; the kernel fills in, then reads, its flags.
        unsafe {
            check(libc::ioctl(fd, siocgifflags, &mut ifr))?;
            ifr.ifr_ifru.ifru_flags[0] |= libc::IFF_UP as libc::c_short;
            check(libc::ioctl(fd, siocsifflags, &ifr))?;
        }
        Ok(())
    }

    fn check(rc: libc::c_int) -> std::io::Result<()> {
        if rc < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// The child: run every case, write the report between its markers, exit.
    fn run_suite(settings: &Settings) -> libc::c_int {
        let started = std::time::Instant::now();
        let report = crate::orchestrate::run_report(
            &cases::instances(),
            Some(settings.jobs),
            None,
            settings.allow_host_sysctl,
        );
        eprintln!(
            "sockconf: the suite took {} ms",
            started.elapsed().as_millis()
        );
        // Compact: every byte crosses an emulated 16550 under TCG.
        let json = serde_json::to_string(&report).expect("reports serialise");
        let written = std::fs::OpenOptions::new()
            .write(true)
            .open(REPORT_PORT)
            .and_then(|mut tty| {
                tty.write_all(crate::matrix::guest::framed(&json).as_bytes())?;
                tty.flush()?;
                // The serial line must have sent everything before the machine goes away.
                nix::sys::termios::tcdrain(&tty).map_err(std::io::Error::from)
            });
        match written {
            Ok(()) => {
                eprintln!("sockconf: report written to {REPORT_PORT}");
                0
            }
            Err(e) => {
                eprintln!("sockconf: cannot write the report to {REPORT_PORT}: {e}");
                1
            }
        }
    }

    /// Reap whatever ends until `suite` has.
    fn reap_until(suite: libc::pid_t) {
        loop {
            let mut status = 0;
            // SAFETY: waitpid on any child, with a status word of ours.
            let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
            if pid == suite {
                eprintln!("sockconf: the suite ended (wait status {status:#x})");
                return;
            }
            if pid < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                eprintln!("sockconf: waitpid: {}", std::io::Error::last_os_error());
                return;
            }
        }
    }

    /// Without RB_NOSYNC, shutdown waits for the syncer (about 8 s), and there is nothing to
    /// sync: the root is a CD and /tmp is memory. Nor are there disk caches to wait 5 s for
    /// (sys/kern/kern_shutdown.c: kern.shutdown.poweroff_delay, "Delay before poweroff to
    /// write disk caches (msec)", 5000 by default).
    fn power_off() -> ! {
        let no_delay: libc::c_int = 0;
        // SAFETY: sysctlbyname with a NUL-terminated name and an int-sized new value, read
        // by the kernel only; no old value is asked for.
        unsafe {
            libc::sysctlbyname(
                c"kern.shutdown.poweroff_delay".as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                (&no_delay as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>(),
            )
        };
        // SAFETY: reboot(2) with flags; it returns only on failure.
        unsafe { libc::reboot(libc::RB_POWEROFF | libc::RB_NOSYNC) };
        eprintln!("sockconf: power off: {}", std::io::Error::last_os_error());
        loop {
            // SAFETY: pause() only waits; PID 1 must never exit.
            unsafe { libc::pause() };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_default_to_one_case_at_a_time() {
        let s = Settings {
            jobs: 3,
            allow_host_sysctl: true,
        };
        assert_eq!(Settings::parse(&s.render()), s);
        assert_eq!(
            Settings::parse("jobs=0\nother=1\n"),
            Settings {
                jobs: 1,
                allow_host_sysctl: false
            }
        );
    }
}
