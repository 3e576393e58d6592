//! `sockconf`: run, explain and compare the catalogue's cases.

mod explain;
mod ladder;
mod orchestrate;
mod render;
mod select;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
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
        /// How many cases run at once (each in its own network namespace).
        #[arg(long, short = 'j')]
        jobs: Option<usize>,
        /// Draw each case's captured segments as a ladder diagram, with the sides' calls.
        #[arg(long, short = 'v')]
        verbose: bool,
        /// Write each case's capture to DIR/<id>.pcap.
        #[arg(long, value_name = "DIR")]
        pcap: Option<PathBuf>,
    },
    /// Print a case's specification, source and expectations.
    Explain { id: String },
    /// Run one case in this process (the runner that `run` and the tests start).
    #[command(hide = true)]
    RunCase {
        id: String,
        #[arg(long)]
        pcap: Option<PathBuf>,
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
        Command::Run {
            ids,
            format,
            jobs,
            verbose,
            pcap,
        } => match select::select(&ids) {
            Ok(selected) => orchestrate::run(
                &selected,
                &orchestrate::Options {
                    format,
                    jobs,
                    verbose,
                    pcap,
                },
            ),
            Err(message) => usage_error(&message),
        },
        Command::Explain { id } => match select::exact(&id) {
            Ok(case) => {
                print!("{}", explain::explain(case));
                ExitCode::SUCCESS
            }
            Err(message) => usage_error(&message),
        },
        Command::RunCase { id, pcap } => match select::exact(&id) {
            Ok(case) => orchestrate::run_case_here(case, pcap.as_deref()),
            Err(message) => usage_error(&message),
        },
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("sockconf: {message}");
    ExitCode::from(2)
}
