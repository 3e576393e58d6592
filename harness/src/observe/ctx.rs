//! The side's handle: record facts and meet the peer at barriers.

use super::clock::Origin;
use super::protocol::{Release, Report};
use super::{Fact, Value};
use crate::case::Variant;
use crate::kind::Kind;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Which end of the connection a side plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Server,
    Client,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
        }
    }
}

/// A side's view of the harness. Everything it observes goes through here, in order.
pub struct Ctx {
    role: Role,
    to_runner: File,
    from_runner: BufReader<File>,
    /// The case's origin, inherited from the runner: facts are stamped relative to it.
    origin: Origin,
    pub(crate) sigpipe_handler_runs: Option<Arc<AtomicUsize>>,
    variant: Option<&'static Variant>,
    kind: Kind,
}

impl Ctx {
    pub(crate) fn new(
        role: Role,
        to_runner: OwnedFd,
        from_runner: OwnedFd,
        origin: Origin,
        variant: Option<&'static Variant>,
        kind: Kind,
    ) -> Ctx {
        Ctx {
            role,
            to_runner: File::from(to_runner),
            from_runner: BufReader::new(File::from(from_runner)),
            origin,
            sigpipe_handler_runs: None,
            variant,
            kind,
        }
    }

    /// The kind of socket this instance of the case runs over (IPv4, IPv6, AF_UNIX, ...).
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether the variant this pair runs in turns `switch` on (false outside variants).
    pub fn variant_has(&self, switch: &str) -> bool {
        self.variant.is_some_and(|v| v.switches.contains(&switch))
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub(crate) fn report(&mut self, report: &Report) {
        let mut line = serde_json::to_vec(report).expect("reports serialise");
        line.push(b'\n');
        // One write per line: the pipe keeps lines under PIPE_BUF whole. If the runner is gone
        // there is nobody to tell, and the runner's deadline covers the case.
        let _ = self.to_runner.write_all(&line);
    }

    /// Record a fact, stamped with the time it was made.
    pub fn record(&mut self, name: &str, value: Value) {
        self.report(&Report::Fact(Fact {
            at_us: Some(self.origin.elapsed_us()),
            ..Fact::new(name, value)
        }));
    }

    /// Tell the runner this side uses local `port`, so that a capture on a shared loopback
    /// keeps this case's connections ([`crate::observe::capture::Capture::keep_ports`]). The
    /// socket steps of [`crate::observe::sock`] claim the ports they bind, listen on and
    /// connect from; a script that binds a socket by hand and listens on it claims it here.
    pub fn claim_port(&mut self, port: u16) {
        self.report(&Report::Port { port });
    }

    /// Announce the call about to be made, so that a hang is reported with its name.
    pub fn begin(&mut self, call: &str) {
        self.report(&Report::Begin {
            call: call.to_string(),
        });
    }

    /// Meet the peer at barrier `step`. Both sides must pass the same barriers in the same
    /// order; the code after it runs in step `step` until the next barrier.
    pub fn sync(&mut self, step: &str) {
        self.sync_with(step, 0);
    }

    /// [`Ctx::sync`], offering a value (a port, say) and returning the peer's.
    pub fn sync_with(&mut self, step: &str, value: u64) -> u64 {
        self.report(&Report::Arrive {
            step: step.to_string(),
            value,
        });
        let mut line = String::new();
        match self.from_runner.read_line(&mut line) {
            Ok(n) if n > 0 => {}
            // The runner is gone: nothing left to do but go.
            _ => unsafe { libc::_exit(75) },
        }
        let release: Release = serde_json::from_str(&line).expect("runner speaks the protocol");
        release.peer
    }

    /// How often the counting SIGPIPE handler has run (0 unless the side installed it).
    pub fn sigpipe_handler_runs(&self) -> u64 {
        self.sigpipe_handler_runs
            .as_ref()
            .map_or(0, |c| c.load(Ordering::SeqCst) as u64)
    }
}
