//! The catalogue as cargo tests: one test per case and kind, named by its instance as a path
//! (`close.fin_then_eof@ipv6` is `close::fin_then_eof::ipv6`), made from `cases::instances()`
//! so that a case added to the catalogue, or a kind added to a case, is a test without further
//! edits.
//!
//! A case that cannot apply on the OS this was built for (its `Need::NotOn` / `Need::OnlyOn`)
//! is ignored, with that reason, like an `#[ignore = "reason"]` test: it counts as ignored,
//! never as passed. So is a case that needs a host-wide sysctl changed (`Need::HostSysctl`, on
//! macOS and FreeBSD), unless SOCKCONF_ALLOW_HOST_SYSCTL=1 allows it (on a throwaway machine):
//! `cargo test` never changes the host by default. `cargo test -- --include-ignored` runs them
//! anyway (the run then skips them with the same reason). Every other case must pass: a skip
//! fails, unless SOCKCONF_ALLOW_SKIP=1.
//!
//! libtest's `#[ignore]` is fixed when the test is compiled, so it could not come from the
//! declarations; libtest-mimic is libtest's command line and output with the tests listed at
//! run time, which can. For the same reason the case-by-kind parametrisation is made here, from
//! the catalogue, and not with rstest's `#[values]`, whose list (and whose `#[ignore]`) is fixed
//! at compile time: a case that runs over AF_UNIX only, or is ignored on this OS, could not say
//! so from its declaration.

mod common;

use harness::{Instance, Need, Os};
use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// Why `cargo test` does not run `case` here, from its declaration: it cannot apply on this OS,
/// or it needs a host sysctl changed that this run may not change.
fn ignored_because(instance: Instance) -> Option<String> {
    let (case, os) = (instance.case, Os::current());
    if let Some(why) = instance.cannot_apply_on(os) {
        return Some(why);
    }
    if std::env::var(common::ALLOW_HOST_SYSCTL_ENV).as_deref() == Ok("1") {
        return None;
    }
    let host_sysctls: Vec<String> = case
        .needs
        .iter()
        .chain(case.variants.iter().flat_map(|v| v.needs))
        .filter_map(|need| match *need {
            Need::HostSysctl(on, name, value) if on == os => Some(format!("{name}={value}")),
            _ => None,
        })
        .collect();
    (!host_sysctls.is_empty()).then(|| {
        format!(
            "needs the host-wide sysctl {} changed for its run; set {}=1 on a machine that may \
             change it",
            host_sysctls.join(", "),
            common::ALLOW_HOST_SYSCTL_ENV
        )
    })
}

fn main() {
    let args = Arguments::from_args();
    let run_ignored = args.ignored || args.include_ignored;
    let trials = cases::instances()
        .into_iter()
        .map(|instance| {
            let name = instance.name();
            let ignored = ignored_because(instance);
            let test = format!(
                "{}::{}",
                instance.case.id.replacen('.', "::", 1),
                instance.kind.name()
            );
            Trial::ignorable_test(test, move || match ignored {
                Some(why) if !run_ignored => Ok(Completion::ignored_with(why)),
                _ => common::check(common::sockconf(), &name)
                    .map(|()| Completion::Completed)
                    .map_err(Failed::from),
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
