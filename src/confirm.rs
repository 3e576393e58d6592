//! `sockconf confirm`: what a run on this OS says about the expectations read in its source.
//!
//! macOS and FreeBSD expectations start as readings of the kernel's source (`FromSource`); a
//! run on that OS confirms or refutes each. [`summary`] sorts a run's cases by what they say
//! (confirmed, confirmed but for the wire, refuted, an observed expectation that failed, not
//! judged) into a Markdown summary to paste into an issue, with the edit each confirmation
//! allows: `Expect::macos(source, facts).observed(&["macos 24.1.0"])`.

use harness::report::{CaseReport, ProvenanceReport, RunReport, Verdict};
use std::fmt::Write;

/// How one case bears on its expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Bearing {
    /// Read in the source, and it failed here: the reading (or the kernel) is wrong.
    Refuted,
    /// Observed before, and it failed here: this release differs, or something broke.
    ObservedFailed,
    /// Read in the source, and everything judged passed, but the wire facts were not judged
    /// (no capture): only the API facts are confirmed.
    ConfirmedButWire,
    /// Read in the source, and every fact passed here.
    Confirmed,
    /// Observed before, and it passed again.
    ObservedHolds,
    /// Not run or not judged.
    NotJudged,
}

impl Bearing {
    fn of(case: &CaseReport) -> Bearing {
        let from_source = case
            .expectation
            .as_ref()
            .is_some_and(|e| e.provenance == ProvenanceReport::FromSource);
        let wire_unjudged = case
            .notes
            .iter()
            .any(|n| n.starts_with("wire facts not judged"));
        match (case.verdict, from_source) {
            (Verdict::Skip, _) => Bearing::NotJudged,
            (Verdict::Fail | Verdict::Timeout, true) => Bearing::Refuted,
            (Verdict::Fail | Verdict::Timeout, false) => Bearing::ObservedFailed,
            (Verdict::Pass, true) if wire_unjudged => Bearing::ConfirmedButWire,
            (Verdict::Pass, true) => Bearing::Confirmed,
            (Verdict::Pass, false) => Bearing::ObservedHolds,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Bearing::Refuted => "refuted: read in the source, failed here",
            Bearing::ObservedFailed => "observed before, failed here",
            Bearing::ConfirmedButWire => {
                "confirmed but for the wire: read in the source, passed, wire not captured"
            }
            Bearing::Confirmed => "confirmed: read in the source, passed here",
            Bearing::ObservedHolds => "observed before, passed again",
            Bearing::NotJudged => "not judged (skipped)",
        }
    }
}

/// The release an observation on this run is recorded under: the OS and `uname -r`.
pub fn release_label(report: &RunReport) -> String {
    format!(
        "{} {}",
        report.environment.os.name(),
        report.environment.kernel_release
    )
}

/// The run as a Markdown summary: a count per bearing, then the cases of each, with what to
/// change or send back.
pub fn summary(report: &RunReport) -> String {
    let env = &report.environment;
    let label = release_label(report);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### sockconf confirm: {label} ({}), sockconf {}, isolation {}, {}\n",
        env.arch,
        env.sockconf_version,
        env.isolation.join(", "),
        env.privileges
    );
    let mut by_bearing: Vec<(Bearing, &CaseReport)> =
        report.cases.iter().map(|c| (Bearing::of(c), c)).collect();
    by_bearing.sort_by_key(|(b, c)| (*b, c.id.clone(), c.kind));
    let all = [
        Bearing::Refuted,
        Bearing::ObservedFailed,
        Bearing::ConfirmedButWire,
        Bearing::Confirmed,
        Bearing::ObservedHolds,
        Bearing::NotJudged,
    ];
    out.push_str("| instances | how many |\n| --- | --- |\n");
    for bearing in all {
        let n = by_bearing.iter().filter(|(b, _)| *b == bearing).count();
        let _ = writeln!(out, "| {} | {n} |", bearing.title());
    }
    for bearing in all {
        let cases: Vec<&CaseReport> = by_bearing
            .iter()
            .filter(|(b, _)| *b == bearing)
            .map(|(_, c)| *c)
            .collect();
        if cases.is_empty() || bearing == Bearing::ObservedHolds {
            continue;
        }
        let _ = writeln!(out, "\n#### {}\n", capitalised(bearing.title()));
        match bearing {
            Bearing::Confirmed => {
                let _ = writeln!(
                    out,
                    "Each of these expectations (cases/src/<family>.rs, the {} entry) may now be\n\
                     marked observed: `.observed(&[\"{label}\"])` after it.\n",
                    env.os.name()
                );
            }
            Bearing::ConfirmedButWire => {
                let _ = writeln!(
                    out,
                    "The API facts passed; the wire facts were not captured, so they are not \
                     confirmed. Run again where the capture works (as root) to confirm them.\n"
                );
            }
            Bearing::Refuted | Bearing::ObservedFailed => {
                let _ = writeln!(
                    out,
                    "Send these lines back (an issue, or the JSON report). Where the kernel is \
                     right, change the expectation to what was observed, cite the source line \
                     that explains it, and mark it `.observed(&[\"{label}\"])`.\n"
                );
            }
            _ => {}
        }
        for case in cases {
            let source = case
                .expectation
                .as_ref()
                .map(|e| format!(" ({}, {}; source: {})", e.os.name(), e.kernel, e.source))
                .unwrap_or_default();
            let _ = writeln!(out, "- `{}`{source}", case.instance());
            if matches!(
                bearing,
                Bearing::Refuted | Bearing::ObservedFailed | Bearing::NotJudged
            ) {
                for why in case.why() {
                    let _ = writeln!(out, "  - {why}");
                }
            }
        }
    }
    out
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Exit 1 when a case refutes its expectation or an observed one failed.
pub fn refuted_any(report: &RunReport) -> bool {
    report
        .cases
        .iter()
        .any(|c| matches!(Bearing::of(c), Bearing::Refuted | Bearing::ObservedFailed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::report::{Environment, ExpectationReport};
    use harness::Os;

    fn judged(id: &str, verdict: Verdict, provenance: ProvenanceReport) -> CaseReport {
        let mut c = CaseReport::new(id, harness::Kind::Ipv4);
        c.expectation = Some(ExpectationReport {
            os: Os::Macos,
            kernel: "any kernel".into(),
            source: "xnu-11215 tcp_usrreq.c".into(),
            provenance,
            server: vec![],
            client: vec![],
            wire: vec![],
            kinds: vec![],
        });
        let why = match verdict {
            Verdict::Fail => vec!["client #0 read#1: expected ECONNRESET, observed EOF".into()],
            _ => vec![],
        };
        c.conclude(verdict, why);
        c
    }

    #[test]
    fn sorts_cases_by_what_they_say_about_their_expectation() {
        let mut env = Environment::here(vec!["host".into()]);
        env.os = Os::Macos;
        env.kernel_release = "24.1.0".into();
        let mut unwired = judged("close.c", Verdict::Pass, ProvenanceReport::FromSource);
        unwired
            .notes
            .push("wire facts not judged: no capture".into());
        let report = RunReport::new(
            env,
            vec![
                judged("close.a", Verdict::Pass, ProvenanceReport::FromSource),
                judged("close.b", Verdict::Fail, ProvenanceReport::FromSource),
                unwired,
            ],
        );
        let md = summary(&report);
        assert!(
            md.contains("| refuted: read in the source, failed here | 1 |"),
            "{md}"
        );
        assert!(
            md.contains("| confirmed: read in the source, passed here | 1 |"),
            "{md}"
        );
        assert!(md.contains("`.observed(&[\"macos 24.1.0\"])`"), "{md}");
        assert!(
            md.contains("- `close.b@ipv4` (macos, any kernel; source: xnu-11215 tcp_usrreq.c)\n  - client #0 read#1: expected ECONNRESET, observed EOF"),
            "{md}"
        );
        let confirmed = md.split("#### Confirmed: ").nth(1).expect(&md);
        assert!(
            confirmed.contains("`close.a@ipv4`") && !confirmed.contains("`close.c@ipv4`"),
            "{md}"
        );
        assert!(refuted_any(&report));
    }
}
