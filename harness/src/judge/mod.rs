//! Expectations and verdicts: which expectation applies here, and does what was observed match.

pub mod wire;

use crate::kind::Kind;
use crate::observe::Fact;
pub use crate::platform::Os;
use serde::Serialize;
pub use wire::WireFact;

/// A range of kernel releases, `from` inclusive, `before` exclusive, compared on
/// (major, minor).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Kernel {
    pub from: (u32, u32),
    pub before: Option<(u32, u32)>,
}

impl Kernel {
    pub const ANY: Kernel = Kernel {
        from: (0, 0),
        before: None,
    };

    pub const fn from(major: u32, minor: u32) -> Kernel {
        Kernel {
            from: (major, minor),
            before: None,
        }
    }

    pub const fn before(major: u32, minor: u32) -> Kernel {
        Kernel {
            from: (0, 0),
            before: Some((major, minor)),
        }
    }

    pub fn contains(&self, release: (u32, u32, u32)) -> bool {
        let v = (release.0, release.1);
        v >= self.from && self.before.is_none_or(|b| v < b)
    }

    pub fn describe(&self) -> String {
        match (self.from, self.before) {
            ((0, 0), None) => "any kernel".into(),
            ((a, b), None) => format!("kernel >= {a}.{b}"),
            ((0, 0), Some((c, d))) => format!("kernel < {c}.{d}"),
            ((a, b), Some((c, d))) => format!("{a}.{b} <= kernel < {c}.{d}"),
        }
    }
}

/// How one expected fact's value is judged.
#[derive(Clone, Copy, Debug)]
pub enum Matcher {
    /// Exactly this rendering: `ok(5)`, `EOF`, `ECONNRESET`, `exit 0`, `killed by SIGPIPE`.
    Is(&'static str),
    /// Any of these renderings; the case's doc says why more than one is allowed.
    OneOf(&'static [&'static str]),
    /// A duration in milliseconds within `lo..=hi`.
    MillisIn(u64, u64),
}

pub const fn is(v: &'static str) -> Matcher {
    Matcher::Is(v)
}

pub const fn one_of(vs: &'static [&'static str]) -> Matcher {
    Matcher::OneOf(vs)
}

pub const fn any_ms(lo: u64, hi: u64) -> Matcher {
    Matcher::MillisIn(lo, hi)
}

impl Matcher {
    pub fn matches(&self, value: &crate::observe::Value) -> bool {
        match self {
            Matcher::Is(want) => value.to_string() == *want,
            Matcher::OneOf(wants) => wants.contains(&value.to_string().as_str()),
            Matcher::MillisIn(lo, hi) => {
                matches!(value, crate::observe::Value::Millis(ms) if (lo..=hi).contains(&ms))
            }
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matcher::Is(v) => f.write_str(v),
            Matcher::OneOf(vs) => f.write_str(&vs.join(" or ")),
            Matcher::MillisIn(lo, hi) => write!(f, "{lo}..{hi}ms"),
        }
    }
}

impl Serialize for Matcher {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// Where an expectation comes from: a run on the OS itself, or a reading of its source.
/// A reading is never presented as an observation: it stays `FromSource` until a run on that
/// OS confirms it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provenance {
    /// Run, and matched, on these OS releases (`linux 6.1`, `freebsd 14.0-STABLE (qemu)`).
    Observed(&'static [&'static str]),
    /// Read in the source named by [`Expect::source`]; not yet run on that OS.
    FromSource,
}

impl Provenance {
    /// `observed on linux 6.1, linux 6.12` or `from source (not yet run)`.
    pub fn describe(&self) -> String {
        crate::report::ProvenanceReport::from(*self).describe()
    }
}

/// The Linux kernels every Linux expectation that applies to any kernel was run on: this
/// machine's and the ones `make matrix` boots (Debian's 5.10, 6.1, 6.12 and sid's 7.2).
pub const LINUX_MATRIX: &[&str] = &[
    "linux 5.10",
    "linux 6.1",
    "linux 6.12",
    "linux 6.18",
    "linux 7.2",
];

/// The FreeBSD the matrix's FreeBSD column boots under qemu (`make matrix FREEBSD_DIST=`, the
/// distribution in shared/): FreeBSD 14.0-STABLE built from source.
pub const FREEBSD_QEMU: &[&str] = &["freebsd 14.0-STABLE (qemu)"];

/// The expected facts of both sides, on one OS and kernel range. Facts are judged in order
/// and completely: a fact the expectation does not name is a difference too.
#[derive(Clone, Copy, Debug)]
pub struct Expect {
    pub os: Os,
    pub kernel: Kernel,
    /// Where this OS's behaviour is written down: the kernel file and function in a named
    /// release (`xnu-11215.1.10 bsd/netinet/tcp_usrreq.c tcp_usr_shutdown()`), or for Linux the
    /// kernel function the observation is explained by.
    pub source: &'static str,
    /// Observed on which releases, or read in the source only.
    pub provenance: Provenance,
    pub server: &'static [(&'static str, Matcher)],
    pub client: &'static [(&'static str, Matcher)],
    /// What the segments must show, where they were captured.
    pub wire: &'static [WireFact],
    /// The kinds this expectation applies to; empty: every kind the case runs over. An
    /// expectation limited to some kinds says where the kernel treats the kinds differently,
    /// and its source says why.
    pub kinds: &'static [Kind],
}

/// What both sides and the wire are expected to show: the part of an expectation that several
/// OSes, kernels or cases share, named once (`const FIN_THEN_EOF: Facts = ...`).
#[derive(Clone, Copy, Debug)]
pub struct Facts {
    pub server: &'static [(&'static str, Matcher)],
    pub client: &'static [(&'static str, Matcher)],
    pub wire: &'static [WireFact],
}

impl Facts {
    /// No facts at all: a start for `Facts { server: .., ..Facts::NONE }`.
    pub const NONE: Facts = Facts {
        server: &[],
        client: &[],
        wire: &[],
    };
}

impl Expect {
    /// What `os` is expected to show on any kernel, for any kind, read in `source` and not yet
    /// run there ([`Provenance::FromSource`]); [`Expect::observed`] records a run that
    /// confirmed it.
    pub const fn reading(os: Os, source: &'static str, facts: Facts) -> Expect {
        Expect {
            os,
            kernel: Kernel::ANY,
            source,
            provenance: Provenance::FromSource,
            server: facts.server,
            client: facts.client,
            wire: facts.wire,
            kinds: &[],
        }
    }

    /// Linux on any kernel, explained by `source` (the kernel function), observed on the
    /// matrix's kernels ([`LINUX_MATRIX`]): a Linux expectation lands only once it has passed
    /// here and in `make matrix`, which CI runs.
    pub const fn linux(source: &'static str, facts: Facts) -> Expect {
        Expect::reading(Os::Linux, source, facts).observed(LINUX_MATRIX)
    }

    /// macOS on any kernel, read in `source` (XNU); no run on a Mac has confirmed it yet.
    pub const fn macos(source: &'static str, facts: Facts) -> Expect {
        Expect::reading(Os::Macos, source, facts)
    }

    /// FreeBSD on any kernel, read in `source` and confirmed by the matrix's FreeBSD column
    /// ([`FREEBSD_QEMU`]). A FreeBSD reading not yet run there is
    /// `Expect::reading(Os::Freebsd, ..)`.
    pub const fn freebsd(source: &'static str, facts: Facts) -> Expect {
        Expect::reading(Os::Freebsd, source, facts).observed(FREEBSD_QEMU)
    }

    /// This expectation, observed on `releases` of its OS.
    pub const fn observed(self, releases: &'static [&'static str]) -> Expect {
        Expect {
            provenance: Provenance::Observed(releases),
            ..self
        }
    }

    /// This expectation, for the kernels in `kernel` only.
    pub const fn kernel(self, kernel: Kernel) -> Expect {
        Expect { kernel, ..self }
    }

    /// This expectation, for these kinds only.
    pub const fn kinds(self, kinds: &'static [Kind]) -> Expect {
        Expect { kinds, ..self }
    }

    /// Whether it applies to `kind`.
    pub fn applies_to(&self, kind: Kind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&kind)
    }

    /// The first expectation that applies to this OS, kernel release and kind.
    pub fn select(
        expects: &[Expect],
        os: Os,
        release: (u32, u32, u32),
        kind: Kind,
    ) -> Option<&Expect> {
        expects
            .iter()
            .find(|e| e.os == os && e.kernel.contains(release) && e.applies_to(kind))
    }
}

/// The differences between observed and expected facts of one side, one line each; empty when
/// they agree.
pub fn diff_side(side: &str, observed: &[Fact], expected: &[(&str, Matcher)]) -> Vec<String> {
    let mut diffs = vec![];
    for i in 0..observed.len().max(expected.len()) {
        match (observed.get(i), expected.get(i)) {
            (Some(o), Some((name, m))) if o.name == *name && m.matches(&o.value) => {}
            (Some(o), Some((name, m))) if o.name == *name => diffs.push(format!(
                "{side} #{i} {name}: expected {m}, observed {}",
                o.value
            )),
            (Some(o), Some((name, m))) => diffs.push(format!(
                "{side} #{i}: expected {name} = {m}, observed {} = {}",
                o.name, o.value
            )),
            (Some(o), None) => diffs.push(format!(
                "{side} #{i}: unexpected extra fact {} = {}",
                o.name, o.value
            )),
            (None, Some((name, m))) => {
                diffs.push(format!("{side} #{i}: missing fact {name} = {m}"))
            }
            (None, None) => unreachable!(),
        }
    }
    diffs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Value;
    use rstest::rstest;

    fn fact(name: &str, value: Value) -> Fact {
        Fact::new(name, value)
    }

    #[rstest]
    #[case::any(Kernel::ANY, (6, 1, 0), true)]
    #[case::from_included(Kernel::from(6, 1), (6, 1, 0), true)]
    #[case::from_excluded(Kernel::from(6, 2), (6, 1, 99), false)]
    #[case::before_excluded(Kernel::before(6, 12), (6, 12, 0), false)]
    #[case::before_included(Kernel::before(6, 12), (6, 11, 9), true)]
    fn kernel_ranges(#[case] k: Kernel, #[case] release: (u32, u32, u32), #[case] inside: bool) {
        assert_eq!(k.contains(release), inside);
    }

    #[rstest]
    #[case::exact(is("ECONNRESET"), Value::Errno("ECONNRESET".into()), true)]
    #[case::exact_miss(is("ECONNRESET"), Value::Errno("EPIPE".into()), false)]
    #[case::one_of(one_of(&["EPIPE", "ECONNRESET"]), Value::Errno("EPIPE".into()), true)]
    #[case::ms_inside(any_ms(900, 1500), Value::Millis(1003), true)]
    #[case::ms_outside(any_ms(900, 1500), Value::Millis(3), false)]
    #[case::ms_not_a_duration(any_ms(0, 10), Value::Ok(5), false)]
    fn matchers(#[case] m: Matcher, #[case] v: Value, #[case] want: bool) {
        assert_eq!(m.matches(&v), want);
    }

    #[test]
    fn agreeing_sides_have_no_diff() {
        let obs = [fact("read", Value::Ok(5)), fact("exit", Value::Exit(0))];
        assert!(diff_side(
            "server",
            &obs,
            &[("read", is("ok(5)")), ("exit", is("exit 0"))]
        )
        .is_empty());
    }

    #[test]
    fn diff_names_value_extra_and_missing_facts() {
        let obs = [fact("read", Value::Eof), fact("write", Value::Ok(1))];
        let d = diff_side("client", &obs, &[("read", is("ECONNRESET"))]);
        assert_eq!(
            d,
            [
                "client #0 read: expected ECONNRESET, observed EOF",
                "client #1: unexpected extra fact write = ok(1)"
            ]
        );
        let d = diff_side("client", &[], &[("exit", is("exit 0"))]);
        assert_eq!(d, ["client #0: missing fact exit = exit 0"]);
    }

    #[test]
    fn first_applicable_expectation_wins() {
        const E: &[Expect] = &[
            Expect {
                os: Os::Linux,
                kernel: Kernel::before(6, 0),
                source: "a test's own",
                provenance: Provenance::FromSource,
                server: &[],
                client: &[("old", is("x"))],
                wire: &[],
                kinds: &[],
            },
            Expect {
                os: Os::Linux,
                kernel: Kernel::ANY,
                source: "a test's own",
                provenance: Provenance::FromSource,
                server: &[],
                client: &[],
                wire: &[],
                kinds: &[],
            },
        ];
        assert_eq!(
            Expect::select(E, Os::Linux, (5, 10, 0), Kind::Ipv4)
                .unwrap()
                .client
                .len(),
            1
        );
        assert_eq!(
            Expect::select(E, Os::Linux, (6, 18, 0), Kind::Ipv6)
                .unwrap()
                .client
                .len(),
            0
        );
        assert!(Expect::select(E, Os::Macos, (23, 0, 0), Kind::Ipv4).is_none());
    }
}
