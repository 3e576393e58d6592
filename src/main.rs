//! `sockconf`: run, explain and compare the catalogue's cases.

mod bench;
mod explain;
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
    },
    /// Print a case's specification, source and expectations.
    Explain { id: String },
    /// Run one case in this process (the runner that `run` and the tests start).
    #[command(hide = true)]
    RunCase { id: String },
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
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
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
        Command::Run { ids, format, jobs } => match select::select(&ids) {
            Ok(selected) => orchestrate::run(&selected, format, jobs),
            Err(message) => usage_error(&message),
        },
        Command::Explain { id } => match select::exact(&id) {
            Ok(case) => {
                print!("{}", explain::explain(case));
                ExitCode::SUCCESS
            }
            Err(message) => usage_error(&message),
        },
        // The benchmark's no-op case is not in the catalogue; only its runner needs to find it.
        Command::RunCase { id } if id == bench::NOOP.id => orchestrate::run_case_here(&bench::NOOP),
        Command::Bench { runs, jobs } => bench::bench(runs, &jobs),
        Command::RunCase { id } => match select::exact(&id) {
            Ok(case) => orchestrate::run_case_here(case),
            Err(message) => usage_error(&message),
        },
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("sockconf: {message}");
    ExitCode::from(2)
}
