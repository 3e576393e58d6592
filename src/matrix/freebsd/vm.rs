//! Boot the FreeBSD CD under qemu within a deadline, and take the run document from the second
//! serial port.
//!
//! `-M pc`: the CD sits on PIIX IDE, where the kernel finds it as cd0 (the loader.rc names it);
//! COM1 is the console, COM2 (`/dev/ttyu1`) carries only the report. `-no-reboot`: the guest's
//! ACPI power-off, a panic's reboot and a triple fault all end qemu.

use super::super::vm::{between_markers, Accel, QEMU};
use harness::report::RunReport;
use std::path::{Path, PathBuf};
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
    let mut child = Command::new(QEMU)
        .args(["-accel", accel.name(), "-M", "pc", "-nodefaults"])
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
        .spawn()
        .map_err(|e| format!("cannot start {QEMU}: {e}"))?;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(status);
        }
        if accel == Accel::Kvm {
            let failed = std::fs::read_to_string(&boot.qemu_log)
                .unwrap_or_default()
                .contains(KVM_FAILED);
            let no_sign_of_life = started.elapsed() > KVM_SIGN_OF_LIFE
                && !std::fs::read_to_string(&boot.console_log)
                    .unwrap_or_default()
                    .contains(LOADER_BANNER);
            if failed || no_sign_of_life {
                let _ = child.kill();
                let _ = child.wait();
                return Err(if failed {
                    format!("qemu: {KVM_FAILED}")
                } else {
                    format!(
                        "no loader banner on the console within {} s",
                        KVM_SIGN_OF_LIFE.as_secs()
                    )
                });
            }
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let report = std::fs::read_to_string(&boot.report_out).unwrap_or_default();
    match (status, between_markers(&report)) {
        (_, Some(json)) => serde_json::from_str(json)
            .map_err(|e| format!("the report from the FreeBSD VM does not parse: {e}")),
        (None, None) => Err(format!(
            "no report within the {} s deadline (the kernel hung or the suite did not finish); console ends:\n{}",
            deadline.as_secs(),
            console_tail(&boot.console_log)
        )),
        (Some(status), None) => {
            let stderr = std::fs::read_to_string(&boot.qemu_log).unwrap_or_default();
            let console = std::fs::read_to_string(&boot.console_log).unwrap_or_default();
            let what = match console.lines().find(|l| l.contains("panic:")) {
                Some(line) => format!("the kernel panicked ({})", line.trim()),
                None if !status.success() => "qemu failed".into(),
                None => "the VM stopped".into(),
            };
            let qemu_said = match stderr.trim() {
                "" => String::new(),
                said => format!("; qemu: {said}"),
            };
            Err(format!(
                "{what} ({status}) after {} s without a report{qemu_said}; console ends:\n{}",
                started.elapsed().as_secs(),
                console_tail(&boot.console_log)
            ))
        }
    }
}

fn console_tail(path: &Path) -> String {
    let console = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = console.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(8)..];
    if tail.is_empty() {
        "    (nothing)".into()
    } else {
        tail.iter()
            .map(|l| format!("    {}", l.trim_end()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
