//! `sockconf guest-init`: PID 1 of the matrix's initramfs. It mounts what the suite needs,
//! loads the modules it needs that Debian builds as modules (socket diagnostics, veth), runs
//! the suite (each case still in its own runner and namespace), writes the run document to
//! the report port between markers, and powers the VM off.

use super::{MODULES_DIR, REPORT_BEGIN, REPORT_END, REPORT_PORT};
use std::io::Write;
use std::process::ExitCode;

pub fn init(jobs: usize) -> ExitCode {
    if std::process::id() != 1 {
        eprintln!("sockconf: guest-init is PID 1 of the matrix's VM only (this is PID {}); it mounts filesystems and powers the machine off", std::process::id());
        return ExitCode::from(2);
    }
    imp::mount_filesystems();
    imp::load_modules(MODULES_DIR);
    let selected = cases::instances();
    let report = crate::orchestrate::run_report(&selected, Some(jobs), None, false);
    let json = serde_json::to_string_pretty(&report).expect("reports serialise");
    match imp::write_report(REPORT_PORT, &json) {
        Ok(()) => eprintln!("sockconf: report written to {REPORT_PORT}"),
        Err(e) => eprintln!("sockconf: cannot write the report to {REPORT_PORT}: {e}"),
    }
    imp::power_off()
}

/// The document between its markers, as the host will look for it.
pub fn framed(json: &str) -> String {
    format!("\n{REPORT_BEGIN}\n{json}\n{REPORT_END}\n")
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use nix::mount::{mount, MsFlags};
    use std::os::fd::AsRawFd;

    pub fn mount_filesystems() {
        for (source, target, fstype) in [
            ("proc", "/proc", "proc"),
            ("sysfs", "/sys", "sysfs"),
            ("devtmpfs", "/dev", "devtmpfs"),
            // Where each AF_UNIX instance's runner mounts its private tmpfs
            // (harness::spawn::unix_dir); the initramfs has no /tmp of its own.
            ("tmpfs", "/tmp", "tmpfs"),
        ] {
            let _ = std::fs::create_dir_all(target);
            if let Err(e) = mount(
                Some(source),
                target,
                Some(fstype),
                MsFlags::empty(),
                None::<&str>,
            ) {
                eprintln!("sockconf: mount {fstype} on {target}: {e}");
            }
        }
    }

    /// Load every module in `dir`, in name order (the initramfs numbers them so that a module
    /// comes after the ones it needs). Compressed modules are decompressed by the kernel.
    pub fn load_modules(dir: &str) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let compressed = path.extension().is_some_and(|e| e != "ko");
            let outcome = std::fs::File::open(&path).and_then(|file| {
                let flags = if compressed {
                    MODULE_INIT_COMPRESSED_FILE
                } else {
                    0
                };
                // SAFETY: finit_module reads the open file and an empty, NUL-terminated
                // parameter string; nothing of ours is written.
                let rc = unsafe {
                    libc::syscall(
                        libc::SYS_finit_module,
                        file.as_raw_fd(),
                        c"".as_ptr(),
                        flags,
                    )
                };
                if rc == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
            match outcome {
                Ok(()) => eprintln!("sockconf: loaded {}", path.display()),
                Err(e) => eprintln!("sockconf: loading {}: {e}", path.display()),
            }
        }
    }

    /// `include/uapi/linux/module.h`: the kernel decompresses the module itself.
    const MODULE_INIT_COMPRESSED_FILE: libc::c_uint = 4;

    pub fn write_report(port: &str, json: &str) -> std::io::Result<()> {
        let mut tty = std::fs::OpenOptions::new().write(true).open(port)?;
        tty.write_all(framed(json).as_bytes())?;
        tty.flush()?;
        // The serial line must have sent everything before the machine goes away.
        nix::sys::termios::tcdrain(&tty).map_err(std::io::Error::from)
    }

    pub fn power_off() -> ExitCode {
        nix::unistd::sync();
        let e = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
        eprintln!("sockconf: power off: {e:?}");
        ExitCode::FAILURE
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    pub fn mount_filesystems() {}

    pub fn load_modules(_dir: &str) {}

    pub fn write_report(port: &str, json: &str) -> std::io::Result<()> {
        std::fs::OpenOptions::new()
            .write(true)
            .open(port)?
            .write_all(framed(json).as_bytes())
    }

    pub fn power_off() -> ExitCode {
        ExitCode::FAILURE
    }
}
