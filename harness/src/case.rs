//! What a case declares. A case is one plain struct literal in `cases/src/<family>.rs`.

use crate::judge::Expect;
use crate::observe::Ctx;
use crate::platform::Os;
use std::time::Duration;

/// One conformance case: a connection between two forked sides, each running its script, and
/// what this OS and kernel are expected to show.
pub struct Case {
    /// `family.behaviour`; the same id in the CLI, the cargo test name, the make target and the
    /// report.
    pub id: &'static str,
    /// What the case shows, in a sentence or three. This is its specification.
    pub doc: &'static str,
    /// Where the expected behaviour is written down: RFC section, kernel function, man page.
    pub source: &'static str,
    /// What the case needs from the environment; an unmet need skips it, with the reason.
    pub needs: &'static [Need],
    pub server: Side,
    pub client: Side,
    /// Expected observations per OS and kernel range; the first that applies is used.
    pub expect: &'static [Expect],
    /// Each step (the code between two barriers) must finish within this.
    pub step_deadline: Duration,
}

impl Case {
    /// The usual step deadline: generous for a loaded machine, short enough to fail fast.
    pub const STEP_DEADLINE: Duration = Duration::from_secs(5);

    /// The family: the part of the id before the dot.
    pub fn family(&self) -> &'static str {
        self.id.split('.').next().unwrap_or(self.id)
    }
}

/// One side of the connection: the SIGPIPE disposition it tests under, and its script.
#[derive(Clone, Copy)]
pub struct Side {
    /// Set explicitly in every side: Rust's std ignores SIGPIPE before `main`, and that
    /// disposition would otherwise leak into the forked side.
    pub sigpipe: SigPipe,
    pub run: fn(&mut Ctx),
}

/// The SIGPIPE disposition a side runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SigPipe {
    /// SIG_DFL: a write to a broken connection kills the process.
    Default,
    /// SIG_IGN: the write fails with EPIPE instead.
    Ignore,
    /// A handler (signal-hook) that counts its runs; the count is recorded as the fact
    /// `sigpipe.handler_runs` when the script ends.
    CountingHandler,
}

/// A requirement on the environment.
#[derive(Clone, Copy, Debug)]
pub enum Need {
    /// Set this sysctl (path under /proc/sys, value) in the case's own network namespace.
    /// Never written on the host: without a namespace the case is skipped.
    Sysctl(&'static str, &'static str),
    /// The case does not apply on this OS, for this reason (e.g. "no SO_NOSIGPIPE").
    NotOn(Os, &'static str),
    /// The case only applies on this OS, for this reason.
    OnlyOn(Os, &'static str),
}
