//! The documents a case run produces.

use crate::judge::{Expect, Matcher, Os, Provenance};
use crate::kind::Kind;
use crate::observe::segment::Segment;
use crate::observe::Fact;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// The kernel range it applies to, as `Kernel::describe` writes it (`kernel >= 6.1`).
    pub kernel: String,
    /// Where this OS's behaviour is written down (kernel file and function in a named
    /// release); see [`Expect::source`].
    pub source: String,
    /// Observed on which releases, or read in the source only.
    pub provenance: ProvenanceReport,
    pub server: Vec<ExpectedFact>,
    pub client: Vec<ExpectedFact>,
    /// The wire facts, as `sockconf explain` spells them. Like the capture's fields of
    /// [`CaseReport`], omitted when empty, so that a report written before the capture reads
    /// and writes back unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wire: Vec<String>,
    /// The kinds it is limited to ([`Expect::kinds`]); omitted when it applies to every kind
    /// the case runs over.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<Kind>,
}

/// [`Provenance`] as data: `{"kind": "observed", "on": ["linux 6.1", ...]}` or
/// `{"kind": "from_source"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProvenanceReport {
    /// Run, and matched, on these OS releases.
    Observed { on: Vec<String> },
    /// Read in the source only; not yet run on that OS.
    FromSource,
}

impl ProvenanceReport {
    /// `observed on linux 6.1, linux 6.12` or `from source (not yet run)`.
    pub fn describe(&self) -> String {
        match self {
            ProvenanceReport::Observed { on } => format!("observed on {}", on.join(", ")),
            ProvenanceReport::FromSource => "from source (not yet run)".into(),
        }
    }

    /// `observed` or `from source`: the short form for table headers and cells.
    pub fn kind(&self) -> &'static str {
        match self {
            ProvenanceReport::Observed { .. } => "observed",
            ProvenanceReport::FromSource => "from source",
        }
    }
}

impl From<Provenance> for ProvenanceReport {
    fn from(p: Provenance) -> Self {
        match p {
            Provenance::Observed(on) => ProvenanceReport::Observed {
                on: on.iter().map(ToString::to_string).collect(),
            },
            Provenance::FromSource => ProvenanceReport::FromSource,
        }
    }
}

/// One expected fact: its name and what its value must match, as the case writes it (`ok(5)`,
/// `EPIPE or ECONNRESET`, `900..1500ms`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedFact {
    pub name: String,
    pub expected: String,
}

impl From<&Expect> for ExpectationReport {
    fn from(e: &Expect) -> Self {
        fn facts(fs: &[(&str, Matcher)]) -> Vec<ExpectedFact> {
            fs.iter()
                .map(|(name, m)| ExpectedFact {
                    name: name.to_string(),
                    expected: m.to_string(),
                })
                .collect()
        }
        ExpectationReport {
            os: e.os,
            kernel: e.kernel.describe(),
            source: e.source.to_string(),
            provenance: e.provenance.into(),
            server: facts(e.server),
            client: facts(e.client),
            wire: e.wire.iter().map(ToString::to_string).collect(),
            kinds: e.kinds.to_vec(),
        }
    }
}

/// The outcome of one case. Every key is always written (absent values as `null` or `[]`), so
/// that two reports have the same shape; readers accept keys they do not know, so that a field
/// added later (with a default) needs no new schema version. Build one with [`CaseReport::new`],
/// the one place that lists every field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseReport {
    pub id: String,
    /// The kind of socket this instance ran over; with `id`, the instance's identity
    /// (`close.fin_then_eof@ipv6`).
    pub kind: Kind,
    pub verdict: Verdict,
    /// Why the case was not run or not judged; set exactly when the verdict is `skip`.
    #[serde(default)]
    pub skip_reason: Option<String>,
    /// Why the case did not pass: for `fail` the differences, fact by fact, or the harness
    /// error; for `timeout` the side, the step and the call it hung in. Empty otherwise.
    #[serde(default)]
    pub failure: Vec<String>,
    pub duration_ms: u64,
    /// None when the case was skipped before it was isolated.
    pub isolation: Option<Isolation>,
    pub observations: Sides,
    pub expectation: Option<ExpectationReport>,
    // The capture's fields are omitted when empty (unlike the rest, always written), so that
    // a report written before the capture reads and writes back unchanged.
    /// What the verdict leaves out: that the wire facts were not judged, and why; which of
    /// the allowed teardowns a timing-dependent case saw.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// When each barrier was released, on the segments' timeline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepMark>,
    /// Every TCP segment on the case's loopback, in order; absent when nothing was captured
    /// (`notes` says why, where the case has wire facts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<Segment>>,
    /// The host sysctls set for this case (on an OS without namespaces, with
    /// `--allow-host-sysctl`), with the values they had; each was restored when the case
    /// ended. Omitted when empty, as it always is on Linux.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_sysctls: Vec<crate::spawn::host_sysctl::HostSysctlChange>,
}

/// The release of one barrier: the moment both sides went on into step `step`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepMark {
    pub step: String,
    /// Microseconds from the case's origin.
    pub at_us: u64,
}

impl CaseReport {
    /// Case `id` over `kind` before it ran: not isolated, skipped as "not run", with nothing
    /// observed.
    pub fn new(id: &str, kind: Kind) -> CaseReport {
        CaseReport {
            id: id.to_string(),
            kind,
            verdict: Verdict::Skip,
            skip_reason: Some("not run".into()),
            failure: vec![],
            duration_ms: 0,
            isolation: None,
            observations: Sides::default(),
            expectation: None,
            notes: vec![],
            steps: vec![],
            segments: None,
            host_sysctls: vec![],
        }
    }

    /// Give the verdict and why: for a skip the lines are its reason, for a failure or a
    /// timeout what went wrong; a pass has none.
    pub fn conclude(&mut self, verdict: Verdict, why: Vec<String>) {
        self.verdict = verdict;
        if verdict == Verdict::Skip {
            self.skip_reason = Some(why.join("; "));
            self.failure = vec![];
        } else {
            self.skip_reason = None;
            self.failure = why;
        }
    }

    /// `id@kind`, as the CLI and make name the instance.
    pub fn instance(&self) -> String {
        format!("{}@{}", self.id, self.kind.name())
    }

    /// The skip reason or the failure lines, whichever the verdict has.
    pub fn why(&self) -> Vec<&str> {
        match &self.skip_reason {
            Some(reason) => vec![reason.as_str()],
            None => self.failure.iter().map(String::as_str).collect(),
        }
    }
}

/// The version of the run document's layout; bumped on any incompatible change (a field
/// removed, renamed or given another meaning), never for a field added with a default.
/// 2: `detail` split into `skip_reason` and `failure`; expected facts became objects.
/// 3: the expectation carries its `source` and `provenance`. An expectation of a version 2
/// report meant "confirmed on this OS"; in 3 it may be a reading of the source, so a version 2
/// report is refused rather than read as if every expectation had been observed.
/// 4: every case report names its `kind` (`ipv4`, `ipv6`, `dual_stack`, `unix_stream`,
/// `unix_seqpacket`); a case appears once per kind it ran over, and (`id`, `kind`) is the key.
/// A version 3 report's cases all ran over IPv4, but it is refused rather than guessed at.
pub const SCHEMA_VERSION: u32 = 4;

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
    pub sysctls: BTreeMap<String, String>,
    /// The same sysctls as a case finds them before it writes its own: read at start in a fresh
    /// namespace of the kind the cases get. A new network namespace starts most of them from
    /// the kernel's defaults, not from the host's values, so these are the ones the cases ran
    /// under. Empty if they could not be read.
    #[serde(default)]
    pub case_sysctls: BTreeMap<String, String>,
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

/// One run of one or more cases: the document `sockconf run --format json` writes, described
/// in docs/report-schema.md.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    pub schema_version: u32,
    pub environment: Environment,
    pub summary: Summary,
    /// Sorted by id, so that two reports diff case by case.
    pub cases: Vec<CaseReport>,
}

impl RunReport {
    /// The document for these cases, in its stable order.
    pub fn new(environment: Environment, mut cases: Vec<CaseReport>) -> RunReport {
        cases.sort_by(|a, b| (&a.id, a.kind).cmp(&(&b.id, b.kind)));
        RunReport {
            schema_version: SCHEMA_VERSION,
            environment,
            summary: Summary::of(&cases),
            cases,
        }
    }

    /// Read a report that `sockconf run --format json` wrote, telling apart the ways a file can
    /// fail to be one.
    pub fn from_json(text: &str) -> Result<RunReport, ReportError> {
        if text.trim().is_empty() {
            return Err(ReportError::Empty);
        }
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            if e.is_eof() {
                ReportError::Truncated {
                    line: e.line(),
                    column: e.column(),
                }
            } else {
                ReportError::NotJson(e.to_string())
            }
        })?;
        let is_report = ["schema_version", "environment", "cases"]
            .iter()
            .all(|key| value.get(key).is_some());
        if !is_report {
            return Err(ReportError::NotAReport);
        }
        match value["schema_version"].as_u64() {
            Some(v) if v == u64::from(SCHEMA_VERSION) => {}
            _ => {
                return Err(ReportError::WrongSchema {
                    found: value["schema_version"].to_string(),
                })
            }
        }
        serde_json::from_value(value).map_err(|e| ReportError::Malformed(e.to_string()))
    }
}

/// Why a file is not a report this sockconf can read; one line each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportError {
    Empty,
    Truncated {
        line: usize,
        column: usize,
    },
    NotJson(String),
    /// Valid JSON without the keys every report has.
    NotAReport,
    /// A report of another layout.
    WrongSchema {
        found: String,
    },
    /// The right schema version, but a field is missing or of the wrong type.
    Malformed(String),
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportError::Empty => f.write_str("empty file, not a sockconf report"),
            ReportError::Truncated { line, column } => write!(
                f,
                "truncated JSON: the document ends early (line {line}, column {column})"
            ),
            ReportError::NotJson(e) => write!(f, "not JSON: {e}"),
            ReportError::NotAReport => f.write_str(
                "not a sockconf report: no schema_version, environment and cases (write one with `sockconf run --format json`)",
            ),
            ReportError::WrongSchema { found } if found == "2" => write!(
                f,
                "schema_version 2, but this sockconf reads schema_version {SCHEMA_VERSION} \
                 (version 2 does not say whether an expectation was observed or read in the \
                 source): run the suite again with this sockconf to compare"
            ),
            ReportError::WrongSchema { found } if found == "3" => write!(
                f,
                "schema_version 3, but this sockconf reads schema_version {SCHEMA_VERSION} \
                 (version 3 does not name the socket kind each case ran over): run the suite \
                 again with this sockconf to compare"
            ),
            ReportError::WrongSchema { found } => write!(
                f,
                "schema_version {found}, but this sockconf reads schema_version {SCHEMA_VERSION}"
            ),
            ReportError::Malformed(e) => write!(
                f,
                "malformed sockconf report (schema_version {SCHEMA_VERSION}): {e}"
            ),
        }
    }
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
    "net/ipv4/tcp_keepalive_intvl",
    "net/ipv4/tcp_keepalive_probes",
    "net/ipv4/tcp_orphan_retries",
    "net/ipv4/tcp_retries2",
    "net/ipv4/tcp_rfc1337",
    "net/ipv4/tcp_timestamps",
    "net/ipv4/tcp_max_tw_buckets",
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
            sysctls: read_sysctls(),
            case_sysctls: BTreeMap::new(),
        }
    }
}

/// The values of the sysctls that shape the cases on this OS, named with dots
/// (`net.core.somaxconn`): [`SYSCTLS_OF_INTEREST`] in this process's network namespace on
/// Linux, [`crate::spawn::host_sysctl::OF_INTEREST`] elsewhere.
pub fn read_sysctls() -> BTreeMap<String, String> {
    if Os::current() != Os::Linux {
        return crate::spawn::host_sysctl::read_of_interest();
    }
    SYSCTLS_OF_INTEREST
        .iter()
        .filter_map(|p| crate::spawn::isolate::read_sysctl(p).map(|v| (p.replace('/', "."), v)))
        .collect()
}

/// Where an output file (a pcap, a JUnit file, a run document, a table) is written before it is
/// complete: `<path>.partial`, renamed to `path` once the last byte is down. An interrupted
/// writer leaves at most this name, never a truncated file under the real one; `sockconf run`
/// and `matrix` remove it when they are interrupted.
pub fn partial_path(path: &std::path::Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    name.into()
}

/// Write `contents` to `path` through [`partial_path`].
pub fn write_whole(path: &std::path::Path, contents: impl AsRef<[u8]>) -> std::io::Result<()> {
    let partial = partial_path(path);
    std::fs::write(&partial, contents)?;
    std::fs::rename(&partial, path)
}
