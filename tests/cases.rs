//! The catalogue as cargo tests: one test per case, named by its id as a path
//! (`close.fin_then_eof` is `close::fin_then_eof`), made from `cases::all()` so that a case
//! added to the catalogue is a test without further edits.
//!
//! A case that cannot apply on the OS this was built for (its `Need::NotOn` / `Need::OnlyOn`,
//! or a Linux-only need such as sock_diag) is ignored, with that reason, like an
//! `#[ignore = "reason"]` test: it counts as ignored, never as passed. `cargo test --
//! --include-ignored` runs it anyway (the run then skips it with the same reason). Every other
//! case must pass: a skip fails, unless SOCKCONF_ALLOW_SKIP=1.
//!
//! libtest's `#[ignore]` is fixed when the test is compiled, so it could not come from the
//! declarations; libtest-mimic is libtest's command line and output with the tests listed at
//! run time, which can.

mod common;

use harness::Os;
use libtest_mimic::{Arguments, Completion, Failed, Trial};

fn main() {
    let args = Arguments::from_args();
    let run_ignored = args.ignored || args.include_ignored;
    let trials = cases::all()
        .into_iter()
        .map(|case| {
            let id = case.id;
            let cannot_apply = case.cannot_apply_on(Os::current());
            Trial::ignorable_test(id.replacen('.', "::", 1), move || match cannot_apply {
                Some(why) if !run_ignored => Ok(Completion::ignored_with(why)),
                _ => common::check(common::sockconf(), id)
                    .map(|()| Completion::Completed)
                    .map_err(Failed::from),
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
