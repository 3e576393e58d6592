//! Boot one kernel with the matrix's initramfs under qemu, within a deadline, and take the run
//! document from the report port.

use super::{REPORT_BEGIN, REPORT_END};
use crate::interrupt::SpawnOwned;
use harness::report::RunReport;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const QEMU: &str = "qemu-system-x86_64";

/// How qemu runs the guest's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    /// The guest's clock. Under TCG it counts instructions (`-icount shift=0`: 1 ns each) and
    /// jumps to the next timer when the guest is idle (`sleep=off`), instead of following the
    /// host's clock. With the host's clock, a host busy with other work stretched the guest's
    /// steps past the kernel timers the cases race against (the 200 ms delayed ACK of
    /// backlog.abort_on_overflow, FIN_WAIT2's 2 s, keepalive's 1 s): cases failed or timed
    /// out by the host's load, not by the kernel. Counted in instructions, the guest's time
    /// is the same however busy the host is, and timer waits cost no host time.
    ///
    /// Counted time has no jitter for the kernel to gather entropy from: 5.10 and 6.1 never
    /// initialised their CRNG and the suite stalled after the modules loaded. `-cpu max` gives
    /// the guest TCG's RDRAND, which `random.trust_cpu=on` (on the command line) seeds it from.
    pub(super) fn clock(self) -> &'static [&'static str] {
        match self {
            Accel::Kvm => &[],
            Accel::Tcg => &["-icount", "shift=0,sleep=off", "-cpu", "max"],
        }
    }
}

/// One boot's files: the console log (kernel messages, init's stderr) and the report port.
pub struct Boot {
    pub image: PathBuf,
    pub initramfs: PathBuf,
    pub console_log: PathBuf,
    pub report_out: PathBuf,
    pub memory_mb: u32,
    pub cpus: u32,
    /// How many cases the guest runs at once.
    pub jobs: usize,
}

/// Whether qemu can be started at all: one clear line if not.
pub fn check_qemu() -> Result<(), String> {
    match Command::new(QEMU)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!("{QEMU} --version failed: {}", out.status)),
        Err(e) => Err(format!(
            "cannot start {QEMU} ({e}); install it (Debian: apt-get install qemu-system-x86), or use `make matrix`, which does"
        )),
    }
}

/// A KVM boot that has not printed the kernel's banner by then is taken as KVM not working
/// for this kernel (here it hangs in the decompressor); TCG takes over.
const KVM_SIGN_OF_LIFE: Duration = Duration::from_secs(3);
const BANNER: &str = "Linux version";

/// Whether /dev/kvm can be used at all; whether it really works is seen at boot.
pub fn kvm_available() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// Boot with KVM when it is there and really works, else with TCG; the accelerator that
/// produced the report comes with it.
pub fn run_best(boot: &Boot, deadline: Duration) -> Result<(RunReport, Accel), String> {
    if kvm_available() {
        match run(boot, Accel::Kvm, deadline) {
            Ok(report) => return Ok((report, Accel::Kvm)),
            Err(e) => super::log(&format!(
                "{}: KVM did not work ({}); booting with TCG",
                boot.image.display(),
                e.lines().next().unwrap_or_default()
            )),
        }
    }
    run(boot, Accel::Tcg, deadline).map(|r| (r, Accel::Tcg))
}

/// Boot, wait at most `deadline`, and parse the report. The error says what went wrong:
/// qemu failing, a panic, a hang, or a report that is missing or unreadable, with the end of
/// the console log.
pub fn run(boot: &Boot, accel: Accel, deadline: Duration) -> Result<RunReport, String> {
    for file in [&boot.console_log, &boot.report_out] {
        let _ = std::fs::remove_file(file);
    }
    let started = Instant::now();
    let task = crate::interrupt::task(format!("qemu {} ({})", boot.image.display(), accel.name()));
    task.running();
    let mut child = Command::new(QEMU)
        .args(["-accel", accel.name(), "-machine", "q35", "-nodefaults"])
        .args(accel.clock())
        .args(["-display", "none", "-no-reboot"])
        .args(["-m", &boot.memory_mb.to_string()])
        .args(["-smp", &boot.cpus.to_string()])
        .arg("-kernel")
        .arg(&boot.image)
        .arg("-initrd")
        .arg(&boot.initramfs)
        // ttyS0 is the console; ttyS1 carries nothing but the report, so that kernel messages
        // cannot land inside it. panic=-1: a panic reboots at once, and -no-reboot ends qemu.
        // random.trust_cpu=on: see Accel::clock.
        .arg("-append")
        .arg(format!(
            "console=ttyS0 panic=-1 random.trust_cpu=on rdinit=/init -- guest-init --jobs {}",
            boot.jobs
        ))
        .arg("-serial")
        .arg(file_chardev(&boot.console_log))
        .arg("-serial")
        .arg(file_chardev(&boot.report_out))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Dies with this process, and is ended by Ctrl-C or SIGTERM (crate::interrupt).
        .spawn_owned()
        .map_err(|e| format!("cannot start {QEMU}: {e}"))?;
    let status = wait(&mut child, &task, started, deadline, || {
        let no_sign_of_life = accel == Accel::Kvm
            && started.elapsed() > KVM_SIGN_OF_LIFE
            && !std::fs::read_to_string(&boot.console_log)
                .unwrap_or_default()
                .contains(BANNER);
        no_sign_of_life.then(|| {
            format!(
                "no kernel banner on the console within {} s",
                KVM_SIGN_OF_LIFE.as_secs()
            )
        })
    })?;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    let files = (boot.console_log.as_path(), boot.report_out.as_path());
    outcome(status, &stderr, started, deadline, files, "Kernel panic")
}

/// Wait for qemu to end (its status), or for `deadline` (then it is killed: `None`), asking
/// `gave_up` every 100 ms whether the boot is hopeless (KVM showing no sign of life): its
/// reason kills qemu and is the error. The VM's `task` is finished either way.
pub(super) fn wait(
    child: &mut std::process::Child,
    task: &crate::interrupt::Task,
    started: Instant,
    deadline: Duration,
    mut gave_up: impl FnMut() -> Option<String>,
) -> Result<Option<std::process::ExitStatus>, String> {
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(status);
        }
        if let Some(why) = gave_up() {
            let _ = child.kill();
            let _ = child.wait();
            task.finished("no sign of life");
            return Err(why);
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    task.finished(if status.is_some() {
        "ended"
    } else {
        "timed out"
    });
    Ok(status)
}

/// What came of a boot that ended (`status`) or was stopped at its deadline (`None`): the run
/// document between the markers on the report port, or what went wrong (qemu failing, a
/// panic: a console line with `panic_marker`, a hang, a report missing or unreadable), with
/// what qemu said and the end of the console log. `files`: the console log and the report
/// port's output.
pub(super) fn outcome(
    status: Option<std::process::ExitStatus>,
    qemu_said: &str,
    started: Instant,
    deadline: Duration,
    (console_log, report_out): (&Path, &Path),
    panic_marker: &str,
) -> Result<RunReport, String> {
    let report = std::fs::read_to_string(report_out).unwrap_or_default();
    match (status, between_markers(&report)) {
        (_, Some(json)) => serde_json::from_str(json)
            .map_err(|e| format!("the report from the VM does not parse: {e}")),
        (None, None) => Err(format!(
            "no report within the {} s deadline (the kernel hung or the suite did not finish); console ends:\n{}",
            deadline.as_secs(),
            console_tail(console_log)
        )),
        (Some(status), None) => {
            let console = std::fs::read_to_string(console_log).unwrap_or_default();
            let what = match console.lines().find(|l| l.contains(panic_marker)) {
                Some(line) => format!("the kernel panicked ({})", line.trim()),
                None if !status.success() => "qemu failed".into(),
                None => "the VM stopped".into(),
            };
            let qemu_said = match qemu_said.trim() {
                "" => String::new(),
                said => format!("; qemu: {said}"),
            };
            Err(format!(
                "{what} ({status}) after {} s without a report{qemu_said}; console ends:\n{}",
                started.elapsed().as_secs(),
                console_tail(console_log)
            ))
        }
    }
}

fn file_chardev(path: &Path) -> String {
    format!("file:{}", path.display())
}

/// The document between the markers, if both came through.
pub fn between_markers(text: &str) -> Option<&str> {
    let start = text.find(REPORT_BEGIN)? + REPORT_BEGIN.len();
    let len = text[start..].find(REPORT_END)?;
    Some(text[start..start + len].trim())
}

fn console_tail(path: &Path) -> String {
    let console = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = console.lines().collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_is_what_lies_between_the_markers() {
        let text = format!("noise\r\n{REPORT_BEGIN}\r\n{{\"a\": 1}}\r\n{REPORT_END}\r\nmore");
        assert_eq!(between_markers(&text), Some("{\"a\": 1}"));
        let cut = format!("{REPORT_BEGIN}\n{{\"a\":");
        assert_eq!(between_markers(&cut), None);
    }
}
