//! What a case declares. A case is one plain struct literal in `cases/src/<family>.rs`.

use crate::judge::Expect;
use crate::kind::Kind;
use crate::observe::Ctx;
use crate::platform::Os;
use std::time::Duration;

/// One conformance case: a connection between two forked sides, each running its script, and
/// what this OS and kernel are expected to show.
///
/// A declaration states what is particular to the case and takes the rest from
/// [`Case::DEFAULTS`]: `Case { id, doc, source, server, client, expect, ..Case::DEFAULTS }`.
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
    /// Run the pair once per variant, each in its own namespace; empty: run it once.
    pub variants: &'static [Variant],
    /// The socket kinds the case runs over, each an instance of its own (`id@ipv6`) judged on
    /// its own. One declaration serves them all; the scripts build their sockets from
    /// [`Ctx::kind`]. A kind the case cannot apply to is simply not listed.
    pub kinds: &'static [Kind],
}

impl Case {
    /// The usual step deadline: generous for a loaded machine, short enough to fail fast.
    pub const STEP_DEADLINE: Duration = Duration::from_secs(5);

    /// What a case is unless its declaration says otherwise: no needs, no variants, the usual
    /// step deadline, run over IPv4 and IPv6. Its id, doc, source, sides and expectations are
    /// placeholders every case replaces (the completeness tests in `cases` check that each has
    /// an id, a doc, a source and an expectation or a reason per OS).
    pub const DEFAULTS: Case = Case {
        id: "",
        doc: "",
        source: "",
        needs: &[],
        server: Side::UNDECLARED,
        client: Side::UNDECLARED,
        expect: &[],
        step_deadline: Case::STEP_DEADLINE,
        variants: &[],
        kinds: Kind::TCP,
    };

    /// The instances of this case: one per kind it runs over.
    pub fn instances(&'static self) -> impl Iterator<Item = Instance> {
        self.kinds
            .iter()
            .map(move |&kind| Instance { case: self, kind })
    }

    /// The family: the part of the id before the dot.
    pub fn family(&self) -> &'static str {
        self.id.split('.').next().unwrap_or(self.id)
    }

    /// Why the case cannot apply on `os` at all, from its declaration ([`Need::NotOn`],
    /// [`Need::OnlyOn`], [`Need::SockDiag`]); `None` where it applies. The runner skips such a
    /// case with this reason, `cargo test` ignores it with this reason, and `sockconf explain`
    /// shows it in the OS's column. Unlike an unmet sysctl or namespace, no environment of
    /// that OS could meet it.
    pub fn cannot_apply_on(&self, os: Os) -> Option<String> {
        self.needs.iter().find_map(|need| match *need {
            Need::NotOn(not, why) if not == os => Some(why.to_string()),
            Need::OnlyOn(only, why) if only != os => Some(why.to_string()),
            // The kernel's socket table is read with sock_diag on Linux and with the PCB list
            // sysctls on FreeBSD and macOS (observe/sock_diag.rs).
            Need::SockDiag if !matches!(os, Os::Linux | Os::Freebsd | Os::Macos) => Some(format!(
                "needs the kernel's socket table to list sockets no process holds (TIME_WAIT, \
                 orphans), and sockconf cannot read it on {}",
                os.name()
            )),
            _ => None,
        })
    }
}

/// One case run over one kind: what the CLI selects, the runner runs and the report judges.
#[derive(Clone, Copy)]
pub struct Instance {
    pub case: &'static Case,
    pub kind: Kind,
}

impl Instance {
    /// `close.fin_then_eof@ipv6`: the id everywhere one instance is named.
    pub fn name(&self) -> String {
        format!("{}@{}", self.case.id, self.kind.name())
    }

    /// Why this instance cannot apply on `os` at all: its case's reason
    /// ([`Case::cannot_apply_on`]), or its kind's ([`Kind::cannot_apply_on`]: no AF_UNIX
    /// SOCK_SEQPACKET on macOS).
    pub fn cannot_apply_on(&self, os: Os) -> Option<String> {
        self.case
            .cannot_apply_on(os)
            .or_else(|| self.kind.cannot_apply_on(os).map(str::to_string))
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

impl Side {
    /// A side that runs `run` with SIGPIPE ignored (SIG_IGN, which the side sets itself): the
    /// disposition of every case that does not test SIGPIPE, so that a write to a broken
    /// connection is observed as EPIPE rather than ending the side.
    pub const fn new(run: fn(&mut Ctx)) -> Side {
        Side {
            sigpipe: SigPipe::Ignore,
            run,
        }
    }

    /// A side that runs `run` under the SIGPIPE disposition `sigpipe`.
    pub const fn with_sigpipe(sigpipe: SigPipe, run: fn(&mut Ctx)) -> Side {
        Side { sigpipe, run }
    }

    /// [`Case::DEFAULTS`]'s sides: a case that forgets one fails loudly, it does not pass.
    pub const UNDECLARED: Side = Side::new(undeclared_side);
}

fn undeclared_side(ctx: &mut Ctx) {
    panic!(
        "the case declares no {} script (Case::DEFAULTS has none)",
        ctx.role().name()
    );
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
    /// Linux: set this sysctl (path under /proc/sys, value) in the case's own network
    /// namespace. Never written on the host: without a namespace the case is skipped. It does
    /// not apply on other OSes, which name their own with [`Need::HostSysctl`].
    Sysctl(&'static str, &'static str),
    /// On this OS (macOS, FreeBSD: no network namespaces), the case needs this sysctl (by
    /// name, `net.inet.tcp.finwait2_timeout`) set to this value. It is host-wide, so it is only
    /// changed on an explicit opt-in (`--allow-host-sysctl`, for throwaway CI VMs) or in a
    /// disposable VM, and restored when the case ends; otherwise the case is skipped with the
    /// reason. Ignored on other OSes.
    HostSysctl(Os, &'static str, &'static str),
    /// The case does not apply on this OS, for this reason (e.g. "no SO_NOSIGPIPE").
    NotOn(Os, &'static str),
    /// The case only applies on this OS, for this reason.
    OnlyOn(Os, &'static str),
    /// The case lists the kernel's socket table ([`Ctx::sock_diag`], [`Ctx::await_sock`]):
    /// sock_diag on Linux, the PCB list sysctl on FreeBSD (`net.inet.tcp.pcblist`) and macOS
    /// (`net.inet.tcp.pcblist_n`); unmet elsewhere. The name stays Linux's for the cases'
    /// sake.
    SockDiag,
    /// The case needs a private network namespace, for this reason (CAP_NET_ADMIN over the
    /// namespace, say, which an unprivileged process only has inside one of its own).
    Netns(&'static str),
}

/// One of several runs of a case, each in a fresh namespace of its own: the runner forks a
/// sub-runner per variant, which isolates, writes the variant's sysctls, runs the pair, and
/// hands back the facts, each prefixed with the variant's name (`old_set.new_unset: bind`).
/// The scripts ask [`Ctx::variant_has`] which switches of the variant are on.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    /// Prefixes the variant's facts; short and readable (`tw_reuse_1`).
    pub name: &'static str,
    /// Needs of this variant's namespace, on top of the case's (its sysctls, say).
    pub needs: &'static [Need],
    /// Named switches the scripts read (`old_reuseaddr`); a switch not listed is off.
    pub switches: &'static [&'static str],
}
