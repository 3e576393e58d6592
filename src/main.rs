//! `sockconf`: run, explain and compare the catalogue's cases.

mod bench;
mod compare;
mod confirm;
mod explain;
mod junit;
mod ladder;
mod matrix;
mod orchestrate;
mod render;
mod select;

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
    /// Print every case id, one a line.
    List,
    /// Run cases (all, or the given ids and family prefixes) and judge them.
    Run {
        /// Case ids (`close.fin_then_eof`) or family prefixes (`close`).
        ids: Vec<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// How many cases run at once (each in its own network namespace); by default 8 per
        /// core, since cases mostly wait (see `make bench`).
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
    },
    /// Run the suite on this kernel and on Debian kernels booted under qemu, and compare them.
    Matrix(matrix::MatrixArgs),
    /// Run one case in this process (the runner that `run` and the tests start).
    #[command(hide = true)]
    RunCase {
        id: String,
        /// Write the case's capture to DIR/<id>.pcap.
        #[arg(long, value_name = "DIR")]
        pcap: Option<std::path::PathBuf>,
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
        /// Job counts to time the suite at (the default job count is always added).
        #[arg(long, value_delimiter = ',', default_value = "2,4,8,16,32,64")]
        jobs: Vec<usize>,
    },
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
        Command::List => {
            for case in cases::all() {
                println!("{}", case.id);
            }
            ExitCode::SUCCESS
        }
        Command::Run {
            ids,
            format,
            jobs,
            junit,
            verbose,
            pcap,
        } => match select::select(&ids) {
            Ok(selected) => orchestrate::run(
                &selected,
                &orchestrate::Options {
                    format,
                    jobs,
                    junit,
                    verbose,
                    pcap,
                },
            ),
            Err(message) => usage_error(&message),
        },
        Command::Compare {
            reports,
            format,
            strict,
        } => compare_files(&reports, format, strict),
        Command::Explain { ids, format } => match select::select(&ids) {
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
        } => confirm(&ids, from.as_deref(), json.as_deref(), jobs),
        // The benchmark's no-op case is not in the catalogue; only its runner needs to find it.
        Command::RunCase { id, pcap } if id == bench::NOOP.id => {
            orchestrate::run_case_here(&bench::NOOP, pcap.as_deref())
        }
        Command::Bench { runs, jobs } => bench::bench(runs, &jobs),
        Command::RunCase { id, pcap } => match select::exact(&id) {
            Ok(case) => orchestrate::run_case_here(case, pcap.as_deref()),
            Err(message) => usage_error(&message),
        },
        Command::Matrix(args) => matrix::matrix(&args),
        Command::GuestInit { jobs } => matrix::guest::init(jobs),
        Command::ProbeSysctls => orchestrate::probe_sysctls_here(),
    }
}

/// Read every report first, and print nothing but the errors if any is bad.
fn compare_files(paths: &[std::path::PathBuf], format: TableFormat, strict: bool) -> ExitCode {
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
        return ExitCode::from(2);
    }
    let labelled: Vec<(String, harness::report::RunReport)> = compare::labels(&reports)
        .into_iter()
        .zip(reports.into_iter().map(|(_, r)| r))
        .collect();
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
) -> ExitCode {
    let report = match from {
        Some(path) => {
            let read = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read: {e}"))
                .and_then(|text| {
                    harness::report::RunReport::from_json(&text).map_err(|e| e.to_string())
                });
            match read {
                Ok(report) => report,
                Err(e) => return usage_error(&format!("{}: {e}", path.display())),
            }
        }
        None => match select::select(ids) {
            Ok(selected) => orchestrate::run_report(&selected, jobs, None),
            Err(message) => return usage_error(&message),
        },
    };
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report).expect("reports serialise") + "\n";
        if let Err(e) = std::fs::write(path, text) {
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

fn usage_error(message: &str) -> ExitCode {
    eprintln!("sockconf: {message}");
    ExitCode::from(2)
}
