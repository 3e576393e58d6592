//! `sockconf`: run, explain and compare the catalogue's cases.

mod bench;
mod compare;
mod confirm;
mod explain;
mod html;
mod interrupt;
mod junit;
mod ladder;
mod matrix;
mod orchestrate;
mod render;
mod schedule;
mod select;
mod xml;

use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sockconf",
    version,
    about = "What the kernel really does when TCP connections end"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every instance (a case over one socket kind), one a line: `close.fin_then_eof@ipv4`.
    List {
        /// Only the instances of these kinds (ipv4, ipv6, dual_stack, unix_stream,
        /// unix_seqpacket); repeat or separate with commas.
        #[arg(long, value_delimiter = ',', value_parser = parse_kind)]
        kind: Vec<harness::Kind>,
    },
    /// Run cases (all, or the given ids and family prefixes) over every kind they apply to,
    /// and judge each instance.
    Run {
        /// Case ids (`close.fin_then_eof`) or family prefixes (`close`), each for every kind
        /// its cases run over, or with `@kind` for that kind alone (`close.fin_then_eof@ipv6`).
        ids: Vec<String>,
        /// Only the instances of these kinds (ipv4, ipv6, dual_stack, unix_stream,
        /// unix_seqpacket); repeat or separate with commas.
        #[arg(long, value_delimiter = ',', value_parser = parse_kind)]
        kind: Vec<harness::Kind>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// How many instances run at once (each in its own network namespace); by default 8
        /// per core, plus one per instance expected to wait a second or more, since cases
        /// mostly wait (see `make bench`). The longest expected start first.
        #[arg(long, short = 'j')]
        jobs: Option<usize>,
        /// Also write the run as JUnit XML to FILE (for CI dashboards).
        #[arg(long, value_name = "FILE")]
        junit: Option<std::path::PathBuf>,
        /// Draw each case's captured segments as a ladder diagram, with the sides' calls.
        #[arg(long, short = 'v')]
        verbose: bool,
        /// Write each case's capture to DIR/<id>.pcap.
        #[arg(long, value_name = "DIR")]
        pcap: Option<std::path::PathBuf>,
        /// On an OS without network namespaces (macOS, FreeBSD), let the cases that need a
        /// host sysctl set it, one case at a time, and restore it when the case ends. For
        /// throwaway CI VMs; without it such cases are skipped, and the host is never changed.
        #[arg(long)]
        allow_host_sysctl: bool,
        /// Also write the run as one self-contained HTML page to FILE, each case's ladder
        /// drawn.
        #[arg(long, value_name = "FILE")]
        html: Option<std::path::PathBuf>,
    },
    /// Show saved reports of `run --format json`: as text, or with --html as one HTML page
    /// (one column per report, the cases that differ with their ladders side by side).
    Report {
        /// One or more report files.
        #[arg(required = true, value_name = "REPORT.json")]
        reports: Vec<std::path::PathBuf>,
        /// Write the page to FILE instead of printing text.
        #[arg(long, value_name = "FILE")]
        html: Option<std::path::PathBuf>,
        /// In the text, draw each case's ladder.
        #[arg(long, short = 'v')]
        verbose: bool,
    },
    /// Put reports of `run --format json` side by side: one column per report, one row per
    /// observed fact that differs. Exit 0 if none differs, 1 if some do, 2 on a bad report.
    Compare {
        /// Two or more report files.
        #[arg(required = true, num_args = 2.., value_name = "REPORT.json")]
        reports: Vec<std::path::PathBuf>,
        #[arg(long, value_enum, default_value_t = TableFormat::Text)]
        format: TableFormat,
        /// Count every difference in durations and timer values, however small.
        #[arg(long)]
        strict: bool,
    },
    /// Print cases' specifications and what they expect on Linux, macOS and FreeBSD, side by
    /// side: per OS the expected facts with their source and provenance, or why the case
    /// cannot apply there.
    Explain {
        /// Case ids or family prefixes; all cases when none is given.
        ids: Vec<String>,
        /// `json` is the same as data (docs/explain-schema.md); `markdown` is the README's
        /// tables (where each expectation comes from, where the OSes differ).
        #[arg(long, value_enum, default_value_t = TableFormat::Text)]
        format: TableFormat,
    },
    /// Run the suite (or read a run's report) and sort the cases by what they say about their
    /// expectations: confirmed or refuted readings of the source, observed ones that failed.
    /// Prints a Markdown summary to send back; exit 1 when something was refuted or failed.
    Confirm {
        /// Case ids or family prefixes; all cases when none is given.
        ids: Vec<String>,
        /// Summarise this report of `run --format json` instead of running.
        #[arg(long, value_name = "REPORT.json")]
        from: Option<std::path::PathBuf>,
        /// Also write the run's report here (to attach to the summary).
        #[arg(long, value_name = "FILE")]
        json: Option<std::path::PathBuf>,
        /// How many cases run at once, as for `run`.
        #[arg(long, short = 'j')]
        jobs: Option<usize>,
        /// As for `run`: let the cases that need a host sysctl (macOS, FreeBSD) set it, one at a
        /// time, and restore it after.
        #[arg(long)]
        allow_host_sysctl: bool,
    },
    /// Run the suite on this kernel and on Debian kernels booted under qemu, and compare them.
    Matrix(matrix::MatrixArgs),
    /// Run one instance (`id@kind`) in this process (the runner that `run` and the tests start).
    #[command(hide = true)]
    RunCase {
        id: String,
        /// Write the case's capture to DIR/<id>.pcap.
        #[arg(long, value_name = "DIR")]
        pcap: Option<std::path::PathBuf>,
        /// Set the host sysctls the case declares for this OS, and restore them after.
        #[arg(long)]
        allow_host_sysctl: bool,
    },
    /// Isolate this process as a case would be and print the sysctls it finds, as JSON.
    #[command(hide = true)]
    ProbeSysctls,
    /// Measure the harness's cost per case and the suite's wall time (`make bench`).
    #[command(hide = true)]
    Bench {
        /// Runs per measurement; medians are reported.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Other job counts to time the suite at, besides the default one.
        #[arg(long, value_delimiter = ',')]
        jobs: Vec<usize>,
    },
    /// The benchmark's floor: unshare a network namespace, fork two children, wait, exit.
    #[command(hide = true)]
    ProbeFloor,
    /// PID 1 of the matrix's VM: mount, run the suite, report over serial, power off.
    #[command(hide = true)]
    GuestInit {
        /// How many cases run at once in the VM.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    Text,
    Json,
    Markdown,
}

fn main() -> ExitCode {
    // The FreeBSD VM's kernel starts init with no arguments we choose: PID 1 is the guest.
    #[cfg(target_os = "freebsd")]
    if std::process::id() == 1 {
        matrix::freebsd::guest::init();
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap's help and version are not errors.
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::List { kind } => match select::select(&[], &kind) {
            Ok(instances) => {
                for instance in instances {
                    println!("{}", instance.name());
                }
                ExitCode::SUCCESS
            }
            Err(message) => usage_error(&message),
        },
        Command::Run {
            ids,
            kind,
            format,
            jobs,
            junit,
            verbose,
            pcap,
            allow_host_sysctl,
            html,
        } => match select::select(&ids, &kind) {
            Ok(selected) => {
                interrupt::install();
                orchestrate::run(
                    &selected,
                    &orchestrate::Options {
                        format,
                        jobs,
                        junit,
                        verbose,
                        pcap,
                        allow_host_sysctl,
                        html,
                    },
                )
            }
            Err(message) => usage_error(&message),
        },
        Command::Compare {
            reports,
            format,
            strict,
        } => compare_files(&reports, format, strict),
        Command::Report {
            reports,
            html,
            verbose,
        } => report_files(&reports, html.as_deref(), verbose),
        Command::Explain { ids, format } => match select::select_cases(&ids) {
            Ok(selected) => {
                let explained: Vec<explain::Explained> =
                    selected.into_iter().map(explain::explained).collect();
                let out = match format {
                    TableFormat::Text => explained
                        .iter()
                        .map(explain::text)
                        .collect::<Vec<_>>()
                        .join("\n"),
                    TableFormat::Json => explain::json(&explained),
                    TableFormat::Markdown => explain::markdown(&explained),
                };
                print!("{out}");
                ExitCode::SUCCESS
            }
            Err(message) => usage_error(&message),
        },
        Command::Confirm {
            ids,
            from,
            json,
            jobs,
            allow_host_sysctl,
        } => {
            interrupt::install();
            confirm(
                &ids,
                from.as_deref(),
                json.as_deref(),
                jobs,
                allow_host_sysctl,
            )
        }
        // The benchmark's no-op case is not in the catalogue; only its runner needs to find it.
        Command::RunCase { id, pcap, .. } if id == bench::noop().name() => {
            orchestrate::run_case_here(bench::noop(), pcap.as_deref(), false)
        }
        Command::Bench { runs, jobs } => bench::bench(runs, &jobs),
        Command::ProbeFloor => bench::probe_floor_here(),
        Command::RunCase {
            id,
            pcap,
            allow_host_sysctl,
        } => match select::exact(&id) {
            Ok(instance) => {
                orchestrate::run_case_here(instance, pcap.as_deref(), allow_host_sysctl)
            }
            Err(message) => usage_error(&message),
        },
        Command::Matrix(args) => {
            interrupt::install();
            matrix::matrix(&args)
        }
        Command::GuestInit { jobs } => matrix::guest::init(jobs),
        Command::ProbeSysctls => orchestrate::probe_sysctls_here(),
    }
}

/// A `--kind` value: one of the kinds' names.
fn parse_kind(name: &str) -> Result<harness::Kind, String> {
    harness::Kind::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = harness::Kind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown kind '{name}'; kinds: {}", names.join(", "))
    })
}

/// Read every report first, and print nothing but the errors if any is bad (then exit 2);
/// each report comes labelled as compare heads its column.
fn read_reports(
    paths: &[std::path::PathBuf],
) -> Result<Vec<(String, harness::report::RunReport)>, ExitCode> {
    let mut reports = vec![];
    let mut errors = vec![];
    for path in paths {
        let shown = path.display().to_string();
        match std::fs::read_to_string(path) {
            Err(e) => errors.push(format!("{shown}: cannot read: {e}")),
            Ok(text) => match harness::report::RunReport::from_json(&text) {
                Ok(report) => reports.push((shown, report)),
                Err(e) => errors.push(format!("{shown}: {e}")),
            },
        }
    }
    if !errors.is_empty() {
        for e in errors {
            eprintln!("sockconf: {e}");
        }
        return Err(ExitCode::from(2));
    }
    Ok(compare::labels(&reports)
        .into_iter()
        .zip(reports.into_iter().map(|(_, r)| r))
        .collect())
}

fn compare_files(paths: &[std::path::PathBuf], format: TableFormat, strict: bool) -> ExitCode {
    let labelled = match read_reports(paths) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let tolerance = if strict {
        compare::Tolerance::STRICT
    } else {
        compare::Tolerance::DEFAULT
    };
    let table = compare::compare(&labelled, tolerance);
    let out = match format {
        TableFormat::Text => compare::text(&table),
        TableFormat::Json => compare::json(&table),
        TableFormat::Markdown => compare::markdown(&table),
    };
    print!("{out}");
    if table.differs() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `sockconf confirm`: run (or read) a report and print what it says about the expectations.
fn confirm(
    ids: &[String],
    from: Option<&std::path::Path>,
    json: Option<&std::path::Path>,
    jobs: Option<usize>,
    allow_host_sysctl: bool,
) -> ExitCode {
    let report = match from {
        Some(path) => match read_reports(&[path.to_path_buf()]) {
            Ok(mut read) => read.remove(0).1,
            Err(code) => return code,
        },
        None => match select::select(ids, &[]) {
            Ok(selected) => orchestrate::run_report(&selected, jobs, None, allow_host_sysctl),
            Err(message) => return usage_error(&message),
        },
    };
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report).expect("reports serialise") + "\n";
        if let Err(e) = harness::report::write_whole(path, text.as_bytes()) {
            return usage_error(&format!("--json {}: {e}", path.display()));
        }
    }
    print!("{}", confirm::summary(&report));
    if confirm::refuted_any(&report) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `sockconf report`: the reports as text, or as one HTML page. Exit 0, or 2 on a bad report or
/// an unwritable page.
fn report_files(
    paths: &[std::path::PathBuf],
    html: Option<&std::path::Path>,
    verbose: bool,
) -> ExitCode {
    let reports = match read_reports(paths) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let Some(path) = html else {
        for (label, report) in &reports {
            if reports.len() > 1 {
                println!("==> {label}");
            }
            print!("{}", render::text(report, verbose));
        }
        return ExitCode::SUCCESS;
    };
    let title = match reports.as_slice() {
        [(_, one)] => html::title(one),
        many => format!("sockconf: {} reports side by side", many.len()),
    };
    match harness::report::write_whole(path, html::page(&title, &reports, None, &[])) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => usage_error(&format!("--html {}: {e}", path.display())),
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("sockconf: {message}");
    ExitCode::from(2)
}
