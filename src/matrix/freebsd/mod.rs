//! The FreeBSD column of `sockconf matrix`: `--kernel freebsd:PATH` takes a FreeBSD
//! distribution (`dist.rs`), cross-builds sockconf statically against it (`build.rs`), writes
//! a CD that boots FreeBSD's loader, the kernel and sockconf as init (`iso.rs`), boots it under
//! qemu (`vm.rs`), and reads the run document the guest (`guest.rs`) writes to the second
//! serial port, as the Linux VMs do.
//!
//! The column is prepared (unpack, build, CD) while the host's suite runs, and boots when the
//! host's suite is done, beside the Linux VMs.

mod build;
mod dist;
pub mod guest;
mod iso;
mod vm;

use super::table::Column;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What `--kernel` takes before a distribution's path.
pub const PREFIX: &str = "freebsd:";

/// The `--kernel` values that name FreeBSD distributions, and the others.
pub fn split(kernels: &[String]) -> (Vec<PathBuf>, Vec<String>) {
    let mut freebsd = vec![];
    let mut others = vec![];
    for spec in kernels {
        match spec.strip_prefix(PREFIX) {
            Some(path) => freebsd.push(PathBuf::from(path)),
            None => others.push(spec.clone()),
        }
    }
    (freebsd, others)
}

/// What one FreeBSD column is booted with: the matrix's own settings.
#[derive(Clone)]
struct Options {
    /// Unpacked distributions and the linker wrapper go here.
    pub cache: PathBuf,
    /// The CD, console log and report port's output go under here.
    pub out: PathBuf,
    pub deadline: Duration,
    pub memory_mb: u32,
    pub cpus: u32,
    /// How many cases run at once in the guest.
    pub jobs: usize,
}

/// The FreeBSD columns under way: prepared in the background at once, booted on [`go`].
///
/// [`go`]: Columns::go
pub struct Columns {
    go: Option<mpsc::Sender<()>>,
    workers: Vec<std::thread::JoinHandle<Column>>,
}

impl Columns {
    /// Start preparing a column per distribution (nothing when there is none).
    pub fn start(dists: Vec<PathBuf>, args: &super::MatrixArgs) -> Columns {
        Columns::start_with(
            dists,
            &Options {
                cache: args.cache.clone(),
                out: args.out.clone(),
                deadline: Duration::from_secs(args.deadline),
                memory_mb: args.memory,
                cpus: args.cpus,
                jobs: args.guest_jobs,
            },
        )
    }

    fn start_with(dists: Vec<PathBuf>, options: &Options) -> Columns {
        let (go, wait) = mpsc::channel::<()>();
        let wait = std::sync::Arc::new(std::sync::Mutex::new(wait));
        let workers = dists
            .into_iter()
            .map(|path| {
                let options = options.clone();
                let wait = wait.clone();
                std::thread::spawn(move || column(&path, &options, &wait))
            })
            .collect();
        Columns {
            go: Some(go),
            workers,
        }
    }

    /// The host's suite is done: boot the prepared columns.
    pub fn go(&mut self) {
        if let Some(go) = self.go.take() {
            for _ in &self.workers {
                let _ = go.send(());
            }
        }
    }

    /// Every column, in the order given.
    pub fn join(mut self) -> Vec<Column> {
        self.go();
        std::mem::take(&mut self.workers)
            .into_iter()
            .map(|w| w.join().expect("no worker panics"))
            .collect()
    }
}

/// Prepare, wait for the go, boot: one column, a report or one line saying why there is none.
fn column(path: &Path, options: &Options, go: &std::sync::Mutex<mpsc::Receiver<()>>) -> Column {
    // Until the kernel's release is known, the column is named by the distribution's file
    // (a heading is also a file name under the output directory).
    let named = format!(
        "freebsd-{}",
        path.file_name().map_or("dist".into(), |n| n
            .to_string_lossy()
            .replace(['/', ' '], "_"))
    );
    let prepared = prepare(path, options);
    // Told to go, or the matrix ended without telling (the sender is gone): either way, on.
    let _ = go.lock().map(|g| g.recv());
    let failed = |heading: String, why: String| {
        super::log(&format!("{heading}: {why}"));
        Column {
            heading,
            outcome: Err(why),
        }
    };
    let (dist, boot) = match prepared {
        Ok(p) => p,
        Err(why) => return failed(named, why),
    };
    let heading = format!("freebsd-{}", dist.release);
    let started = Instant::now();
    match vm::run_best(&boot, options.deadline) {
        Ok((report, accel)) => {
            super::log(&format!(
                "{heading}: report after {} s ({}): {}",
                started.elapsed().as_secs(),
                accel.name(),
                super::verdicts(&report)
            ));
            if report.environment.kernel_release != dist.release {
                return failed(
                    heading,
                    format!(
                        "booted {}, but the report comes from {}",
                        dist.release, report.environment.kernel_release
                    ),
                );
            }
            Column {
                heading,
                outcome: Ok(report),
            }
        }
        Err(why) => failed(heading, why),
    }
}

/// Unpack the distribution, cross-build sockconf against it and write the CD.
fn prepare(path: &Path, options: &Options) -> Result<(dist::Dist, vm::Boot), String> {
    let cache = options.cache.join("freebsd");
    let started = Instant::now();
    let dist = dist::open(path, &cache)?;
    iso::check_xorriso()?;
    let major = harness::platform::parse_release(&dist.release).0;
    let init = build::cross_build(&dist.root, major, &cache)?;
    let heading = format!("freebsd-{}", dist.release);
    let dir = options.out.join(&heading);
    let settings = guest::Settings {
        jobs: options.jobs,
        // The VM is disposable: the cases may set the host-wide sysctls they declare there.
        allow_host_sysctl: true,
    };
    let iso = dir.join("cd.iso");
    iso::contents(&dist, &init, &settings, &dir.join("cd"))
        .map_err(|e| format!("staging the CD in {}: {e}", dir.display()))
        .and_then(|grafts| iso::write(&grafts, &iso))?;
    super::log(&format!(
        "{heading}: {} loader, sockconf built and CD written in {} s",
        match dist.loader {
            dist::Loader::Simple => "simple",
            dist::Loader::Lua => "Lua",
        },
        started.elapsed().as_secs()
    ));
    let boot = vm::Boot {
        iso,
        console_log: dir.join("console.log"),
        report_out: dir.join("report.out"),
        qemu_log: dir.join("qemu.log"),
        memory_mb: options.memory_mb,
        cpus: options.cpus,
    };
    Ok((dist, boot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freebsd_specs_are_told_from_linux_ones() {
        let given =
            ["6.1", "freebsd:../shared/freebsd/x.tar.xz", "/boot/vmlinuz"].map(String::from);
        let (freebsd, linux) = split(&given);
        assert_eq!(freebsd, [PathBuf::from("../shared/freebsd/x.tar.xz")]);
        assert_eq!(linux, ["6.1", "/boot/vmlinuz"]);
    }

    /// A missing distribution is one line, and the column says which spec it was.
    #[test]
    fn a_missing_distribution_is_one_line_in_its_column() {
        let options = Options {
            cache: std::env::temp_dir().join(format!("sockconf-fbsd-{}", std::process::id())),
            out: std::env::temp_dir(),
            deadline: Duration::from_secs(1),
            memory_mb: 512,
            cpus: 1,
            jobs: 1,
        };
        let columns =
            Columns::start_with(vec![PathBuf::from("/nonexistent/freebsd")], &options).join();
        let _ = std::fs::remove_dir_all(&options.cache);
        assert_eq!(columns.len(), 1);
        assert_eq!(columns[0].heading, "freebsd-freebsd");
        let why = columns[0].outcome.as_ref().unwrap_err();
        assert!(
            why.starts_with("/nonexistent/freebsd: no such file"),
            "{why}"
        );
        assert!(!why.contains('\n'), "{why}");
    }
}
