//! `sockconf matrix`: run the suite on this machine's kernel and on Debian kernels booted
//! under qemu, keep each run document under `target/matrix/`, and print the table that
//! compares them (also written as the HTML page `target/matrix/index.html`).
//!
//! Each kernel boots a small initramfs that this binary writes itself: the static sockconf as
//! /init (`guest-init`), which runs the suite and sends the run document back over a serial
//! port of its own, between markers.

mod apt;
mod debian;
pub mod freebsd;
pub mod guest;
mod initramfs;
mod kernel;
mod table;
mod vm;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Where the guest finds its modules, and what surrounds the report on the report port.
pub const MODULES_DIR: &str = "/modules";
pub const REPORT_BEGIN: &str = "===== sockconf run report begin =====";
pub const REPORT_END: &str = "===== sockconf run report end =====";
/// The second serial port: the first is the kernel's console.
pub const REPORT_PORT: &str = "/dev/ttyS1";
/// The column of this machine's own kernel, and its report's file name.
pub const HOST: &str = "host";
/// Five years of Linux: bullseye's 5.10, bookworm's 6.1, trixie's 6.12 and sid's newest.
pub const DEFAULT_KERNELS: [&str; 4] = ["5.10", "6.1", "6.12", "sid"];

#[derive(clap::Args, Clone)]
pub struct MatrixArgs {
    /// Debian kernels to boot: a series (`5.10`, `6.12`, `7.2`: the newest build Debian
    /// offers), a suite (`bookworm`, `oldstable`, `sid`: its default kernel), a full version
    /// (`6.1.0-50`, `6.12.117+deb13`, or the package's `6.1.176-1`), or the path of a kernel
    /// image to boot as it is. `freebsd:PATH` adds a FreeBSD column: PATH holds a FreeBSD
    /// release's kernel.txz and base.txz, or is a directory or tarball in their layout.
    #[arg(long = "kernel", value_name = "VERSION", default_values_t = DEFAULT_KERNELS.map(String::from))]
    kernels: Vec<String>,
    /// Boot this flavour of each Debian kernel: PREEMPT_RT (`rt`) or the cloud build
    /// (`cloud`); its columns say so (`linux-6.1.0-50-rt`).
    #[arg(long, value_enum, default_value_t = debian::Flavour::Plain)]
    flavour: debian::Flavour,
    /// Seconds each VM may take from boot to report before it counts as hung. A VM needs
    /// about 25 s of a host core; on a host shared with other work, several times that.
    #[arg(long, default_value_t = 300)]
    deadline: u64,
    /// How many VMs boot at once. Under TCG with a counted clock a VM only computes (its timer
    /// waits cost nothing), about 25 s of a host core each; on 2 cores shared with other work
    /// (load 11), 4 at once took 266 s for the default matrix, 2 at once 314 s.
    #[arg(long, default_value_t = 4)]
    vms: usize,
    /// Memory per VM, in MiB. The kernel sizes some sysctls by it (tcp_rmem, tcp_wmem,
    /// tcp_max_syn_backlog), which the table's environment section shows.
    #[arg(long, default_value_t = 512)]
    memory: u32,
    /// How many cases run at once in each VM. Most cases wait on timers (TIME_WAIT reuse,
    /// keepalive, FIN_WAIT2), so several at once shorten the run even on one CPU.
    #[arg(long, default_value_t = 4)]
    guest_jobs: usize,
    /// Virtual CPUs per VM.
    #[arg(long, default_value_t = 1)]
    cpus: u32,
    /// The static sockconf to boot as init; by default this binary, when it is static.
    #[arg(long, value_name = "PATH")]
    guest_binary: Option<PathBuf>,
    /// Where the downloaded kernels are kept.
    #[arg(long, default_value = "target/kernels")]
    cache: PathBuf,
    /// sockconf's own apt (sources list, lists, package cache) for Debian's kernel suites.
    #[arg(long, default_value = "target/apt")]
    apt: PathBuf,
    /// Where the run documents, initramfs and console logs go.
    #[arg(long, default_value = "target/matrix")]
    out: PathBuf,
    /// Also write the table as markdown to this file.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
}

/// Exit 0 when every column has a report and no case failed; 1 otherwise; 2 when the matrix
/// cannot start (no qemu, no static binary).
pub fn matrix(args: &MatrixArgs) -> ExitCode {
    let started = Instant::now();
    let (freebsd_dists, linux) = freebsd::split(&args.kernels);
    let args = &MatrixArgs {
        kernels: linux,
        ..args.clone()
    };
    // A name that names nothing is the first thing said, before what the run needs.
    let apt = apt::Apt::new(&args.apt);
    let wanted = match resolve_all(args, &apt) {
        Ok(wanted) => wanted,
        Err(e) => return fail(&e),
    };
    let guest = match guest_binary(args.guest_binary.as_deref()) {
        Ok(path) => path,
        Err(e) => return fail(&e),
    };
    if let Err(e) = vm::check_qemu() {
        return fail(&e);
    }
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        return fail(&format!("{}: {e}", args.out.display()));
    }
    let mut freebsd = freebsd::Columns::start(freebsd_dists, args);

    // The host's suite runs while the kernels download and unpack; the VMs boot after both,
    // so that they do not slow the host's timers down.
    let (host, prepared) = std::thread::scope(|s| {
        let host =
            s.spawn(|| crate::orchestrate::run_report(&cases::instances(), None, None, false));
        let preparing: Vec<_> = wanted
            .iter()
            .map(|want| s.spawn(|| prepare(args, &apt, &guest, want)))
            .collect();
        let prepared: Vec<_> = preparing
            .into_iter()
            .map(|p| p.join().expect("no worker panics"))
            .collect();
        (host.join().expect("no worker panics"), prepared)
    });
    log(&format!("{HOST}: {}", verdicts(&host)));
    freebsd.go();
    let mut columns = vec![table::Column {
        heading: HOST.into(),
        outcome: Ok(host),
    }];
    columns.extend(boot_all(args, prepared));
    columns.extend(freebsd.join());
    log(&format!("matrix done in {} s", started.elapsed().as_secs()));

    // Files under a temporary name until complete; an interrupt waits for them (crate::interrupt).
    let _outputs = crate::interrupt::outputs();
    for column in &columns {
        // One of the two files per kernel, never a stale other from an earlier run.
        let path = args.out.join(format!("{}.json", column.heading));
        let error_path = args.out.join(format!("{}.error", column.heading));
        let written = match &column.outcome {
            Ok(report) => {
                let _ = std::fs::remove_file(&error_path);
                harness::report::write_whole(
                    &path,
                    serde_json::to_string_pretty(report).expect("reports serialise"),
                )
            }
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                harness::report::write_whole(&error_path, e)
            }
        };
        if let Err(e) = written {
            log(&format!("cannot write {}: {e}", path.display()));
        }
    }
    let text = table::render(&columns, table::Style::Text);
    print!("{text}");
    if let Some(path) = &args.markdown {
        let markdown = table::render(&columns, table::Style::Markdown);
        if let Err(e) = harness::report::write_whole(path, markdown) {
            log(&format!("cannot write {}: {e}", path.display()));
        }
    }
    let page = args.out.join("index.html");
    if let Err(e) = std::fs::write(&page, table::html(&columns)) {
        log(&format!("cannot write {}: {e}", page.display()));
    }
    let all_good = columns.iter().all(|c| {
        c.outcome
            .as_ref()
            .is_ok_and(|r| r.summary.failed + r.summary.timeout == 0)
    });
    if all_good {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// A kernel ready to boot: fetched, with its initramfs written.
struct Prepared {
    heading: String,
    release: String,
    boot: vm::Boot,
}

/// Boot every prepared kernel, `args.vms` at a time; one column each, in the order given.
fn boot_all(args: &MatrixArgs, prepared: Vec<Result<Prepared, Unprepared>>) -> Vec<table::Column> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let columns: std::sync::Mutex<Vec<Option<table::Column>>> =
        std::sync::Mutex::new((0..prepared.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..args.vms.clamp(1, prepared.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let column = match prepared.get(i) {
                    None => break,
                    Some(Ok(kernel)) => boot(args, kernel),
                    Some(Err(failed)) => table::Column {
                        heading: failed.heading.clone(),
                        outcome: Err(failed.why.clone()),
                    },
                };
                columns.lock().expect("no worker panics")[i] = Some(column);
            });
        }
    });
    columns
        .into_inner()
        .expect("no worker panics")
        .into_iter()
        .flatten()
        .collect()
}

/// A kernel that could not be made ready: its column's heading, and why.
struct Unprepared {
    heading: String,
    why: String,
}

/// A kernel named on the command line, resolved before anything runs.
enum Wanted {
    /// A kernel image to boot as it is.
    Image(PathBuf),
    /// A Debian kernel the lists offer.
    Offered { spec: String, offer: debian::Offer },
    /// A Debian kernel an earlier run left in the cache, named by its release.
    Cached(kernel::Kernel),
}

/// Resolve every `--kernel`; the first that names nothing is one line saying what exists.
fn resolve_all(args: &MatrixArgs, apt: &apt::Apt) -> Result<Vec<Wanted>, String> {
    let mut catalogue = None;
    let mut wanted = vec![];
    for spec in &args.kernels {
        if Path::new(spec).is_file() {
            wanted.push(Wanted::Image(PathBuf::from(spec)));
            continue;
        }
        let release = format!("{spec}-{}amd64", args.flavour.infix());
        if let Some(kernel) = kernel::cached_release(&release, &args.cache) {
            wanted.push(Wanted::Cached(kernel));
            continue;
        }
        if catalogue.is_none() {
            catalogue = Some(apt.catalogue()?);
        }
        let offer = catalogue
            .as_ref()
            .expect("read above")
            .resolve(spec, args.flavour)?;
        log(&format!(
            "kernel {spec}: {} ({})",
            offer.packages().join(" "),
            offer.suite
        ));
        wanted.push(Wanted::Offered {
            spec: spec.clone(),
            offer,
        });
    }
    Ok(wanted)
}

/// Fetch the kernel (or take the image) and write its initramfs.
fn prepare(
    args: &MatrixArgs,
    apt: &apt::Apt,
    guest: &Path,
    wanted: &Wanted,
) -> Result<Prepared, Unprepared> {
    let failed = |heading: String, why: String| {
        log(&format!("{heading}: {why}"));
        Unprepared { heading, why }
    };
    let kernel = match wanted {
        Wanted::Image(path) => kernel::Kernel::image_only(path),
        Wanted::Cached(kernel) => kernel.clone(),
        Wanted::Offered { spec, offer } => kernel::fetch(offer, apt, &args.cache)
            .map_err(|e| failed(format!("linux-{spec}"), e))?,
    };
    let heading = format!("linux-{}", kernel.version);
    let dir = args.out.join(&heading);
    let boot = vm::Boot {
        image: kernel.image.clone(),
        initramfs: dir.join("initramfs.cpio"),
        console_log: dir.join("console.log"),
        report_out: dir.join("report.out"),
        memory_mb: args.memory,
        cpus: args.cpus,
        jobs: args.guest_jobs,
    };
    match std::fs::create_dir_all(&dir)
        .and_then(|()| initramfs::build(guest, &kernel.modules, &boot.initramfs))
    {
        Ok(()) => Ok(Prepared {
            heading,
            release: kernel.release,
            boot,
        }),
        Err(e) => Err(failed(
            heading,
            format!("writing {}: {e}", boot.initramfs.display()),
        )),
    }
}

fn boot(args: &MatrixArgs, kernel: &Prepared) -> table::Column {
    let started = Instant::now();
    let booted = vm::run_best(&kernel.boot, Duration::from_secs(args.deadline));
    if let Ok((report, accel)) = &booted {
        log(&format!(
            "{}: report after {} s ({}): {}",
            kernel.heading,
            started.elapsed().as_secs(),
            accel.name(),
            verdicts(report)
        ));
    }
    let outcome = booted.and_then(|(report, _)| same_release(report, &kernel.release));
    if let Err(e) = &outcome {
        log(&format!("{}: {e}", kernel.heading));
    }
    table::Column {
        heading: kernel.heading.clone(),
        outcome,
    }
}

/// A report from another kernel than the one booted would be a column under a false heading.
fn same_release(
    report: harness::report::RunReport,
    release: &str,
) -> Result<harness::report::RunReport, String> {
    if release.is_empty() || report.environment.kernel_release == release {
        Ok(report)
    } else {
        Err(format!(
            "booted {release}, but the report comes from {}",
            report.environment.kernel_release
        ))
    }
}

/// The binary to boot as init: it must be static, since the initramfs has no libc.
fn guest_binary(given: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = given {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(format!("--guest-binary {}: no such file", path.display()))
        };
    }
    if cfg!(target_feature = "crt-static") {
        return std::env::current_exe().map_err(|e| format!("own path: {e}"));
    }
    Err("this sockconf is dynamically linked and cannot be a VM's init; build a static one (`cargo build --target x86_64-unknown-linux-musl`) and run that, or pass it as --guest-binary; `make matrix` does both".into())
}

fn verdicts(report: &harness::report::RunReport) -> String {
    let s = &report.summary;
    format!(
        "{} passed, {} failed, {} skipped, {} timed out",
        s.passed, s.failed, s.skipped, s.timeout
    )
}

fn log(message: &str) {
    eprintln!("sockconf matrix: {message}");
}

fn fail(message: &str) -> ExitCode {
    eprintln!("sockconf matrix: {message}");
    ExitCode::from(2)
}
