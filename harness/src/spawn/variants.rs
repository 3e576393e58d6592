//! A case run once per [`Variant`], each in a fresh namespace of its own.
//!
//! The runner cannot leave a namespace once it has entered one, so it never isolates itself
//! here: it forks one sub-runner per variant, in turn. The sub-runner isolates (its own network
//! namespace, and its own user namespace when unprivileged), writes the case's and the
//! variant's sysctls, runs the pair, and sends its outcome back as one JSON document. The
//! runner prefixes each fact with the variant's name and joins the outcomes in variant order.

use super::pair::{self, PairOutcome};
use super::{host_sysctl, prepare};
use crate::case::{Case, Variant};
use crate::kind::Kind;
use crate::observe::clock::Origin;
use crate::observe::Fact;
use crate::report::Isolation;
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult};
use std::fs::File;
use std::io::{Read, Write};

/// What a sub-runner sends back: its isolation and the pair's outcome, or the skip reason.
type SubOutcome = Result<(Isolation, PairOutcome), (Isolation, String)>;

/// Exit code of a sub-runner that panicked; the runner reports it as the case's failure.
const SUB_RUNNER_PANICKED: i32 = 70;

/// Run every variant of `case`; the first variant's isolation stands for all of them. A
/// variant that is skipped skips the case, with its reason; a timeout ends the run there.
pub fn run_variants(case: &Case, kind: Kind, origin: Origin) -> SubOutcome {
    let mut joined = PairOutcome::default();
    let mut isolation = None;
    for variant in case.variants {
        let (iso, outcome) = run_one(case, kind, variant, origin)?;
        isolation.get_or_insert(iso);
        let prefix = |facts: Vec<Fact>| {
            facts.into_iter().map(|f| Fact {
                name: format!("{}: {}", variant.name, f.name),
                ..f
            })
        };
        joined.server.extend(prefix(outcome.server));
        joined.client.extend(prefix(outcome.client));
        joined.host_sysctls.extend(outcome.host_sysctls);
        joined.errors.extend(
            outcome
                .errors
                .into_iter()
                .map(|e| format!("{}: {e}", variant.name)),
        );
        if let Some(hung) = outcome.timeout {
            joined.timeout = Some(
                hung.into_iter()
                    .map(|h| format!("{}: {h}", variant.name))
                    .collect(),
            );
            break;
        }
    }
    let isolation = isolation.unwrap_or(Isolation::Host {
        why: "the case declares no variant".into(),
    });
    Ok((isolation, joined))
}

fn run_one(case: &Case, kind: Kind, variant: &'static Variant, origin: Origin) -> SubOutcome {
    pair::assert_single_threaded();
    let (rx, tx) = nix::unistd::pipe().expect("pipe");
    let runner = nix::unistd::getpid();
    // Safe: the runner is single-threaded (asserted above), so the child is a full copy with no
    // lock held by a vanished thread. It isolates, forks the pair (itself single-threaded),
    // writes one document and leaves via `_exit`, never returning into the runner's code.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            drop(rx);
            // If the runner dies, so does its sub-runner; if it died already, stop here.
            if super::parent_death::end_with_parent(runner, nix::sys::signal::Signal::SIGKILL)
                .is_err()
            {
                // SAFETY: leave without running the runner's atexit handlers or destructors.
                unsafe { libc::_exit(SUB_RUNNER_PANICKED) };
            }
            let outcome = std::panic::catch_unwind(|| {
                // The sub-runner's notes (where an AF_UNIX socket lives) stay with it.
                let prepared = prepare(case.needs.iter().chain(variant.needs), kind, &mut vec![]);
                let outcome = prepared.map(|isolation| {
                    let mut outcome = pair::run_pair(case, kind, Some(variant), origin, None);
                    outcome.host_sysctls = host_sysctl::changes();
                    (isolation, outcome)
                });
                // The sub-runner set them (and made its AF_UNIX directory); it puts them back
                // (and removes it) before it goes.
                let mut failed = host_sysctl::restore_all();
                failed.extend(super::unix_dir::remove_own());
                outcome.map(|(isolation, mut outcome)| {
                    outcome.errors.extend(failed);
                    (isolation, outcome)
                })
            });
            if outcome.is_err() {
                host_sysctl::restore_all();
                super::unix_dir::remove_own();
            }
            let code = match outcome {
                Ok(outcome) => {
                    let doc = serde_json::to_vec(&outcome).expect("outcomes serialise");
                    let _ = File::from(tx).write_all(&doc);
                    0
                }
                Err(_) => SUB_RUNNER_PANICKED,
            };
            // SAFETY: leave without running the runner's atexit handlers or destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(tx);
            let mut doc = vec![];
            let read = File::from(rx).read_to_end(&mut doc);
            let status = waitpid(child, None);
            match (read, serde_json::from_slice::<SubOutcome>(&doc)) {
                (Ok(_), Ok(outcome)) => outcome,
                (read, parsed) => Ok((
                    Isolation::Host {
                        why: "the sub-runner failed".into(),
                    },
                    PairOutcome {
                        errors: vec![format!(
                            "{}: the sub-runner gave no outcome ({status:?}; read {read:?}; parse {:?})",
                            variant.name,
                            parsed.err()
                        )],
                        ..PairOutcome::default()
                    },
                )),
            }
        }
    }
}
