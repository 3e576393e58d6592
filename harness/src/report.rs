//! The documents a case run produces.

use crate::judge::{Expect, Kernel, Matcher, Os};
use crate::observe::segment::Segment;
use crate::observe::Fact;
use serde::{Deserialize, Serialize};

/// The verdict of one case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    /// Not run, or not judged, for the reason in `detail`. Never a pass.
    Skip,
    /// A step missed its deadline; `detail` names the side, the step and the call.
    Timeout,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Skip => "skip",
            Verdict::Timeout => "timeout",
        }
    }
}

/// What isolated a case from the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Isolation {
    /// unshare(CLONE_NEWNET) as root.
    Netns,
    /// unshare(CLONE_NEWUSER | CLONE_NEWNET), unprivileged.
    UserNetns,
    /// No namespace could be had; host loopback with ephemeral ports.
    Host { why: String },
}

impl Isolation {
    pub fn name(&self) -> &'static str {
        match self {
            Isolation::Netns => "netns",
            Isolation::UserNetns => "user+netns",
            Isolation::Host { .. } => "host",
        }
    }
}

/// Each side's facts, in the order they were made; the runner appends `exit`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sides {
    pub server: Vec<Fact>,
    pub client: Vec<Fact>,
}

/// The expectation a case was judged against, as data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectationReport {
    pub os: Os,
    pub kernel: String,
    pub server: Vec<(String, String)>,
    pub client: Vec<(String, String)>,
    /// The wire facts, as `sockconf explain` spells them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wire: Vec<String>,
}

impl From<&Expect> for ExpectationReport {
    fn from(e: &Expect) -> Self {
        fn facts(fs: &[(&str, Matcher)]) -> Vec<(String, String)> {
            fs.iter()
                .map(|(n, m)| (n.to_string(), m.to_string()))
                .collect()
        }
        ExpectationReport {
            os: e.os,
            kernel: describe_kernel(&e.kernel),
            server: facts(e.server),
            client: facts(e.client),
            wire: e.wire.iter().map(ToString::to_string).collect(),
        }
    }
}

fn describe_kernel(k: &Kernel) -> String {
    k.describe()
}

/// The outcome of one case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseReport {
    pub id: String,
    pub verdict: Verdict,
    /// The skip reason, the failure's differences, or where a timeout hung.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detail: Vec<String>,
    pub duration_ms: u64,
    /// None when the case was skipped before it was isolated.
    pub isolation: Option<Isolation>,
    pub observations: Sides,
    pub expectation: Option<ExpectationReport>,
    /// When each barrier was released, on the segments' timeline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepMark>,
    /// Every TCP segment on the case's loopback, in order; absent when nothing was captured
    /// (the reason is in `detail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<Segment>>,
}

/// The release of one barrier: the moment both sides went on into step `step`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepMark {
    pub step: String,
    /// Microseconds from the case's origin.
    pub at_us: u64,
}

/// The version of the run document's layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Where and how a run happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub os: Os,
    pub kernel_release: String,
    pub arch: String,
    pub sockconf_version: String,
    /// The isolation the cases ran under (`netns`, `user+netns`, `host`), as they reported it.
    pub isolation: Vec<String>,
    /// `root` or `uid N`.
    pub privileges: String,
    /// The host's values of the sysctls that shape teardown, read at start (cases change their
    /// own namespace's copies, never these).
    pub sysctls: std::collections::BTreeMap<String, String>,
}

/// How many cases ended how.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub timeout: usize,
}

impl Summary {
    pub fn of(cases: &[CaseReport]) -> Summary {
        let mut s = Summary::default();
        for c in cases {
            match c.verdict {
                Verdict::Pass => s.passed += 1,
                Verdict::Fail => s.failed += 1,
                Verdict::Skip => s.skipped += 1,
                Verdict::Timeout => s.timeout += 1,
            }
        }
        s
    }
}

/// One run of one or more cases: the document `sockconf run --format json` writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    pub schema_version: u32,
    pub environment: Environment,
    pub summary: Summary,
    pub cases: Vec<CaseReport>,
}

/// The sysctls that shape the cases' behaviour, as paths under /proc/sys.
pub const SYSCTLS_OF_INTEREST: &[&str] = &[
    "net/core/somaxconn",
    "net/ipv4/tcp_fin_timeout",
    "net/ipv4/tcp_tw_reuse",
    "net/ipv4/tcp_syncookies",
    "net/ipv4/tcp_max_syn_backlog",
    "net/ipv4/tcp_abort_on_overflow",
    "net/ipv4/tcp_keepalive_time",
    "net/ipv4/tcp_rmem",
    "net/ipv4/tcp_wmem",
];

impl Environment {
    /// Read the environment of this process (before any case runs).
    pub fn here(isolation: Vec<String>) -> Environment {
        let uid = nix::unistd::geteuid();
        Environment {
            os: Os::current(),
            kernel_release: crate::platform::kernel_release(),
            arch: std::env::consts::ARCH.to_string(),
            sockconf_version: env!("CARGO_PKG_VERSION").to_string(),
            isolation,
            privileges: if uid.is_root() {
                "root".into()
            } else {
                format!("uid {uid}")
            },
            sysctls: SYSCTLS_OF_INTEREST
                .iter()
                .filter_map(|p| {
                    crate::spawn::isolate::read_sysctl(p).map(|v| (p.replace('/', "."), v))
                })
                .collect(),
        }
    }
}
