//! The text form of a run: per instance (a case over one socket kind) its verdict, then each
//! side's observations, variant by variant.
//!
//! The layout, for a user scanning a run of 150 instances:
//! - one line per instance, `id@kind verdict ms`, so that `grep @ipv6` or `grep '^close\.'`
//!   gives one line each; the kinds of one case follow each other, and a blank line separates
//!   one case from the next;
//! - under it, one line per side; a case with variants (each run in a namespace of its own,
//!   its facts prefixed `variant: ` by the runner) has one heading per variant with one line
//!   per side under it, so that no line holds every variant's facts;
//! - a kind that observed what the case's previous kind observed (every fact and value, the
//!   verdict, the failure lines and notes; durations and timer values within `sockconf
//!   compare`'s tolerance, which the line then says) says so on its instance line instead of
//!   repeating them: what differs between kinds is what stands out (`--format json` and `-v`
//!   keep every value);
//! - failure lines (`! ...`) under the variant whose facts they are about (without its
//!   prefix), the others, the skip reason and notes last, indented under the instance.

use harness::report::{CaseReport, RunReport, Verdict};
use harness::{Fact, Value};
use std::fmt::Write;

/// The run as text; `verbose` adds each instance's ladder diagram.
pub fn text(report: &RunReport, verbose: bool) -> String {
    let mut out = String::new();
    let env = &report.environment;
    let _ = writeln!(
        out,
        "sockconf {} on {} {} ({}), isolation: {}, {}",
        env.sockconf_version,
        env.os.name(),
        env.kernel_release,
        env.arch,
        env.isolation.join(", "),
        env.privileges
    );
    let mut previous: Option<&CaseReport> = None;
    for case in &report.cases {
        let same_case = previous.filter(|p| p.id == case.id);
        if same_case.is_none() {
            blank_line(&mut out);
        }
        let how = same_case.map_or(Alike::Not, |p| alike(p, case));
        match (same_case, how) {
            (Some(p), how) if how != Alike::Not => {
                instance_line(&mut out, case);
                // Trim the padding the line ends with before the remark.
                out.truncate(out.trim_end().len());
                let _ = write!(out, "   observed as @{}", p.kind.name());
                if how == Alike::WithinTolerance {
                    let t = crate::compare::Tolerance::DEFAULT;
                    let _ = write!(out, ", durations within {} ms or {}%", t.ms, t.percent);
                }
                out.push('\n');
            }
            _ => case_text(&mut out, case),
        }
        if verbose {
            if let Some(ladder) = crate::ladder::observed(case) {
                let _ = writeln!(out, "\n{ladder}");
            }
        }
        previous = Some(case);
    }
    blank_line(&mut out);
    let s = &report.summary;
    let not_passed: Vec<String> = report
        .cases
        .iter()
        .filter(|c| c.verdict != Verdict::Pass)
        .map(CaseReport::instance)
        .collect();
    if !not_passed.is_empty() {
        let _ = writeln!(out, "not passed: {}", not_passed.join(" "));
    }
    if s.timeout > 0 {
        let _ = writeln!(out, "timeouts (counted as failed): {}", s.timeout);
    }
    let _ = writeln!(
        out,
        "sockconf: {} passed, {} failed, {} skipped",
        s.passed,
        s.failed + s.timeout,
        s.skipped
    );
    out
}

/// End `out` with one blank line (a ladder already ends with one).
fn blank_line(out: &mut String) {
    if !out.ends_with("\n\n") {
        out.push('\n');
    }
}

/// How a kind's observations compare with those of the case's previous kind.
#[derive(PartialEq)]
enum Alike {
    /// Every fact's name and value (not when it was made), the verdict, the failure or skip
    /// lines and the notes.
    Exactly,
    /// The same, but for durations and timer values that differ within compare's tolerance.
    WithinTolerance,
    Not,
}

fn alike(a: &CaseReport, b: &CaseReport) -> Alike {
    if a.verdict != b.verdict || a.why() != b.why() || a.notes != b.notes {
        return Alike::Not;
    }
    let tolerance = crate::compare::Tolerance::DEFAULT;
    let mut exactly = true;
    for (x, y) in [
        (&a.observations.server, &b.observations.server),
        (&a.observations.client, &b.observations.client),
    ] {
        if x.len() != y.len() {
            return Alike::Not;
        }
        for (f, g) in x.iter().zip(y) {
            if f.name != g.name {
                return Alike::Not;
            }
            match (&f.value, &g.value) {
                (v, w) if v == w => {}
                (Value::Millis(v), Value::Millis(w)) if tolerance.same(*v, *w) => exactly = false,
                _ => return Alike::Not,
            }
        }
    }
    if exactly {
        Alike::Exactly
    } else {
        Alike::WithinTolerance
    }
}

fn instance_line(out: &mut String, case: &CaseReport) {
    let _ = writeln!(
        out,
        "{:<56} {:<7} {:>5} ms",
        case.instance(),
        case.verdict.name(),
        case.duration_ms
    );
}

fn case_text(out: &mut String, case: &CaseReport) {
    instance_line(out, case);
    let sides = [
        ("server", by_variant(&case.id, &case.observations.server)),
        ("client", by_variant(&case.id, &case.observations.client)),
    ];
    // Variants in the order their facts first appear, whichever side has them.
    let mut variants: Vec<Option<&str>> = vec![];
    for (_, groups) in &sides {
        for (variant, _) in groups {
            if !variants.contains(variant) {
                variants.push(*variant);
            }
        }
    }
    let marker = match case.verdict {
        Verdict::Skip => "skipped:",
        Verdict::Pass => "",
        _ => "!",
    };
    // A failure line about one variant's facts goes under that variant, without the prefix;
    // the rest (and a line that names several variants) after them all.
    let declared: Vec<&str> = cases::by_id(&case.id)
        .map(|c| c.variants.iter().map(|v| v.name).collect())
        .unwrap_or_default();
    let mut why: Vec<(Option<&str>, String)> = vec![];
    for line in case.why() {
        let named: Vec<&str> = declared
            .iter()
            .copied()
            .filter(|v| line.contains(&format!("{v}: ")))
            .collect();
        why.push(match named.as_slice() {
            [one] if variants.contains(&Some(*one)) => {
                (Some(*one), line.replace(&format!("{one}: "), ""))
            }
            _ => (None, line.to_string()),
        });
    }
    for variant in variants.iter().copied().filter(Option::is_some) {
        let _ = writeln!(out, "    variant {}", variant.unwrap_or_default());
        side_lines(out, "        ", &sides, variant);
        for (_, line) in why.iter().filter(|(v, _)| *v == variant) {
            let _ = writeln!(out, "        {marker} {line}");
        }
    }
    if variants.contains(&None) {
        side_lines(out, "    ", &sides, None);
    }
    for (_, line) in why.iter().filter(|(v, _)| v.is_none()) {
        let _ = writeln!(out, "    {marker} {line}");
    }
    for note in &case.notes {
        let _ = writeln!(out, "    {note}");
    }
}

/// Each side's line of facts observed in `variant` (`None`: outside any variant).
fn side_lines(
    out: &mut String,
    indent: &str,
    sides: &[(&str, Vec<VariantFacts>)],
    variant: Option<&str>,
) {
    for (side, groups) in sides {
        for (_, facts) in groups.iter().filter(|(v, _)| *v == variant) {
            let _ = writeln!(out, "{indent}{side}: {}", facts.join("; "));
        }
    }
}

/// A variant's name (`None` outside any) and its facts on one side, as `name = value`.
type VariantFacts<'a> = (Option<&'a str>, Vec<String>);

/// One side's facts as `name = value`, grouped by the variant they were observed in (in order;
/// `None` for facts of a case without variants). A variant's facts are named `variant: name`
/// by the runner (`harness::spawn::variants`); the variants are the catalogue's, so a report
/// of a case this sockconf does not know is shown ungrouped.
fn by_variant<'a>(case_id: &str, facts: &'a [Fact]) -> Vec<VariantFacts<'a>> {
    let mut groups: Vec<VariantFacts> = vec![];
    for f in facts {
        let (variant, name) = match split_variant(case_id, &f.name) {
            Some((variant, name)) => (Some(variant), name),
            None => (None, f.name.as_str()),
        };
        let line = format!("{name} = {}", f.value);
        match groups.last_mut() {
            Some((v, lines)) if *v == variant => lines.push(line),
            _ => groups.push((variant, vec![line])),
        }
    }
    groups
}

/// A fact name of case `case_id` split into its variant and the fact's own name
/// (`old_set.new_set: bind` into `old_set.new_set` and `bind`); `None` where the case declares
/// no variant the name starts with.
pub fn split_variant<'a>(case_id: &str, fact: &'a str) -> Option<(&'a str, &'a str)> {
    let (variant, name) = fact.split_once(": ")?;
    let case = cases::by_id(case_id)?;
    case.variants
        .iter()
        .any(|v| v.name == variant)
        .then_some((variant, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::report::Environment;
    use harness::Kind;

    fn report(
        id: &str,
        kind: Kind,
        server: &[(&str, &str)],
        client: &[(&str, &str)],
    ) -> CaseReport {
        let mut r = CaseReport::new(id, kind);
        let facts = |fs: &[(&str, &str)]| -> Vec<Fact> {
            fs.iter()
                .map(|(n, v)| Fact::new(n, Value::Errno((*v).into())))
                .collect()
        };
        r.observations.server = facts(server);
        r.observations.client = facts(client);
        r.conclude(Verdict::Pass, vec![]);
        r.duration_ms = 3;
        r
    }

    fn run(cases: Vec<CaseReport>) -> String {
        text(&RunReport::new(Environment::here(vec![]), cases), false)
    }

    /// The kinds of one case sit together, one line each; a kind that saw the same facts says
    /// so instead of repeating them, one that saw others shows them.
    #[test]
    fn kinds_of_a_case_follow_each_other_and_repeat_only_what_differs() {
        let out = run(vec![
            report(
                "close.x",
                Kind::Ipv4,
                &[("read", "EOF")],
                &[("close", "ok")],
            ),
            report(
                "close.x",
                Kind::Ipv6,
                &[("read", "EOF")],
                &[("close", "ok")],
            ),
            report("close.y", Kind::Ipv4, &[("read", "EOF")], &[]),
            report("close.y", Kind::Ipv6, &[("read", "ECONNRESET")], &[]),
        ]);
        let lines: Vec<&str> = out.lines().collect();
        let at = |prefix: &str| lines.iter().position(|l| l.starts_with(prefix)).unwrap();
        assert!(
            lines[at("close.x@ipv4")].ends_with("pass        3 ms"),
            "{out}"
        );
        assert_eq!(lines[at("close.x@ipv4") + 1], "    server: read = EOF");
        assert_eq!(lines[at("close.x@ipv4") + 2], "    client: close = ok");
        assert!(
            lines[at("close.x@ipv6")].ends_with("pass        3 ms   observed as @ipv4"),
            "{out}"
        );
        assert_eq!(
            lines[at("close.x@ipv6") + 1],
            "",
            "a blank line between cases"
        );
        assert_eq!(
            lines[at("close.y@ipv6") + 1],
            "    server: read = ECONNRESET"
        );
        assert_eq!(out.matches("close.y@").count(), 2, "one line per instance");
    }

    /// Timer values within compare's tolerance fold, and the line says so; beyond it they do
    /// not.
    #[test]
    fn durations_fold_within_the_tolerance_only() {
        let timed = |kind: Kind, ms: u64| {
            let mut r = report("backlog.x", kind, &[], &[]);
            r.observations.client = vec![Fact::new("connect.ms", Value::Millis(ms))];
            r
        };
        let out = run(vec![timed(Kind::Ipv4, 1026), timed(Kind::Ipv6, 1018)]);
        assert!(
            out.contains("observed as @ipv4, durations within 250 ms or 25%\n"),
            "{out}"
        );
        let out = run(vec![timed(Kind::Ipv4, 1026), timed(Kind::Ipv6, 3018)]);
        assert!(!out.contains("observed as"), "{out}");
        assert!(out.contains("    client: connect.ms = 3018ms"), "{out}");
    }

    /// A case with variants: one heading per variant, one line per side under it, in the
    /// variants' order; no line holds two variants' facts.
    #[test]
    fn variants_get_a_heading_each_with_a_line_per_side() {
        let case = cases::all()
            .into_iter()
            .find(|c| c.variants.len() > 1)
            .expect("a case with variants");
        let (a, b) = (case.variants[0].name, case.variants[1].name);
        let out = run(vec![report(
            case.id,
            Kind::Ipv4,
            &[
                (&format!("{a}: bind"), "EADDRINUSE"),
                (&format!("{b}: bind"), "ok"),
            ],
            &[
                (&format!("{a}: read"), "EOF"),
                (&format!("{b}: read"), "EOF"),
            ],
        )]);
        let expected = format!(
            "    variant {a}\n        server: bind = EADDRINUSE\n        client: read = EOF\n    variant {b}\n        server: bind = ok\n        client: read = EOF\n"
        );
        assert!(out.contains(&expected), "{out}");

        // A failure about one variant's fact goes under it, without the prefix; one that
        // names two variants (the judge compares position by position) stays after them.
        let mut failed = report(
            case.id,
            Kind::Ipv4,
            &[
                (&format!("{a}: bind"), "EADDRINUSE"),
                (&format!("{b}: bind"), "ok"),
            ],
            &[],
        );
        let one = format!("server #1 {b}: bind: expected EADDRINUSE, observed ok");
        let two = format!("server #2: missing fact {b}: exit = exit 0, observed {a}: exit");
        failed.conclude(Verdict::Fail, vec![one, two.clone()]);
        let out = run(vec![failed]);
        let expected = format!(
            "    variant {b}\n        server: bind = ok\n        ! server #1 bind: expected EADDRINUSE, observed ok\n    ! {two}\n"
        );
        assert!(out.contains(&expected), "{out}");
    }
}
