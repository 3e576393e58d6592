//! The text form of a run: per case, the verdict and each side's observations.

use harness::report::{CaseReport, RunReport, Verdict};
use std::fmt::Write;

/// The run as text; `verbose` adds each case's ladder diagram.
pub fn text(report: &RunReport, verbose: bool) -> String {
    let mut out = String::new();
    let env = &report.environment;
    let _ = writeln!(
        out,
        "sockconf {} on {} {} ({}), isolation: {}, {}\n",
        env.sockconf_version,
        env.os.name(),
        env.kernel_release,
        env.arch,
        env.isolation.join(", "),
        env.privileges
    );
    for case in &report.cases {
        case_text(&mut out, case);
        if verbose {
            if let Some(ladder) = crate::ladder::observed(case) {
                let _ = writeln!(out, "\n{ladder}");
            }
        }
    }
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

fn case_text(out: &mut String, case: &CaseReport) {
    let _ = writeln!(
        out,
        "{:<56} {:<7} {:>5} ms",
        case.instance(),
        case.verdict.name(),
        case.duration_ms
    );
    for (side, facts) in [
        ("server", &case.observations.server),
        ("client", &case.observations.client),
    ] {
        if facts.is_empty() {
            continue;
        }
        let rendered: Vec<String> = facts
            .iter()
            .map(|f| format!("{} = {}", f.name, f.value))
            .collect();
        let _ = writeln!(out, "    {side}: {}", rendered.join("; "));
    }
    let marker = match case.verdict {
        Verdict::Skip => "skipped:",
        Verdict::Pass => "",
        _ => "!",
    };
    for line in case.why() {
        let _ = writeln!(out, "    {marker} {line}");
    }
    for note in &case.notes {
        let _ = writeln!(out, "    {note}");
    }
}
