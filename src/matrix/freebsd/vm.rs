//! Boot the FreeBSD CD under qemu within a deadline, and take the run document from the second
//! serial port.
//!
//! `-M pc`: the CD sits on PIIX IDE, where the kernel finds it as cd0 (the loader.rc names it);
//! COM1 is the console, COM2 (`/dev/ttyu1`) carries only the report. `-no-reboot`: the guest's
//! ACPI power-off, a panic's reboot and a triple fault all end qemu.

use super::super::vm::{outcome, wait, Accel, QEMU};
use crate::interrupt::SpawnOwned;
use harness::report::RunReport;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Boot {
    pub iso: PathBuf,
    pub console_log: PathBuf,
    pub report_out: PathBuf,
    /// qemu's own messages: a KVM that cannot run the loader says so there at once.
    pub qemu_log: PathBuf,
    pub memory_mb: u32,
    pub cpus: u32,
}

/// FreeBSD's loader prints this at once; a KVM boot that has not by then is taken as KVM not
/// working, and TCG takes over.
const KVM_SIGN_OF_LIFE: Duration = Duration::from_secs(3);
const LOADER_BANNER: &str = "FreeBSD/x86";
/// Where KVM cannot emulate an instruction of the boot block (here, nested: the BTX loader's
/// return to virtual-8086 mode), qemu says this and stops the guest without exiting.
const KVM_FAILED: &str = "KVM internal error";

/// Boot with KVM when /dev/kvm opens and the loader shows up in time, else with TCG.
pub fn run_best(boot: &Boot, deadline: Duration) -> Result<(RunReport, Accel), String> {
    if super::super::vm::kvm_available() {
        match run(boot, Accel::Kvm, deadline) {
            Ok(report) => return Ok((report, Accel::Kvm)),
            Err(e) => super::super::log(&format!(
                "{}: KVM did not work ({}); booting with TCG",
                boot.iso.display(),
                e.lines().next().unwrap_or_default()
            )),
        }
    }
    run(boot, Accel::Tcg, deadline).map(|r| (r, Accel::Tcg))
}

/// Boot, wait at most `deadline`, parse the report; or say what happened, with the end of the
/// console log.
pub fn run(boot: &Boot, accel: Accel, deadline: Duration) -> Result<RunReport, String> {
    for file in [&boot.console_log, &boot.report_out, &boot.qemu_log] {
        let _ = std::fs::remove_file(file);
    }
    let started = Instant::now();
    let qemu_log = std::fs::File::create(&boot.qemu_log)
        .map_err(|e| format!("{}: {e}", boot.qemu_log.display()))?;
    let task = crate::interrupt::task(format!("qemu {} ({})", boot.iso.display(), accel.name()));
    task.running();
    let mut child = Command::new(QEMU)
        .args(["-accel", accel.name(), "-M", "pc", "-nodefaults"])
        // The Linux VMs' clock: counted instructions under TCG, so that the host's load cannot
        // stretch the timers the cases measure (FreeBSD needs no entropy seed from it).
        .args(accel.clock())
        .args(["-display", "none", "-no-reboot"])
        .args(["-m", &boot.memory_mb.to_string()])
        .args(["-smp", &boot.cpus.to_string()])
        .arg("-cdrom")
        .arg(&boot.iso)
        .args(["-boot", "d"])
        .arg("-serial")
        .arg(format!("file:{}", boot.console_log.display()))
        .arg("-serial")
        .arg(format!("file:{}", boot.report_out.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(qemu_log)
        // Dies with this process, and is ended by Ctrl-C or SIGTERM (crate::interrupt).
        .spawn_owned()
        .map_err(|e| format!("cannot start {QEMU}: {e}"))?;
    let status = wait(&mut child, &task, started, deadline, || {
        if accel != Accel::Kvm {
            return None;
        }
        if std::fs::read_to_string(&boot.qemu_log)
            .unwrap_or_default()
            .contains(KVM_FAILED)
        {
            return Some(format!("qemu: {KVM_FAILED}"));
        }
        let no_sign_of_life = started.elapsed() > KVM_SIGN_OF_LIFE
            && !std::fs::read_to_string(&boot.console_log)
                .unwrap_or_default()
                .contains(LOADER_BANNER);
        no_sign_of_life.then(|| {
            format!(
                "no loader banner on the console within {} s",
                KVM_SIGN_OF_LIFE.as_secs()
            )
        })
    })?;
    let qemu_said = std::fs::read_to_string(&boot.qemu_log).unwrap_or_default();
    let files = (boot.console_log.as_path(), boot.report_out.as_path());
    outcome(status, &qemu_said, started, deadline, files, "panic:")
}
