//! The matrix's table: `sockconf compare`'s, one column per kernel that gave a report; below
//! it, each kernel that gave none, with why.
//!
//! A case's wall-clock duration is not compared across the matrix: under TCG every guest
//! instruction is emulated, so a VM's case takes 10 to 100 times the host's, whatever its
//! kernel does. Timer facts the cases observe (`Millis`) are still compared, within compare's
//! tolerance; the JSON reports keep every duration.

use crate::compare;
use crate::html::Missing;
use harness::report::RunReport;
use std::fmt::Write;

/// One kernel: its name (`host`, `linux-6.1.0-56`) and its report, or why there is none.
pub struct Column {
    pub heading: String,
    pub outcome: Result<RunReport, String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Text,
    Markdown,
}

/// The comparison of the kernels that gave a report, durations left out.
fn table(columns: &[Column]) -> compare::Table {
    let reports: Vec<(String, RunReport)> = columns
        .iter()
        .filter_map(|c| Some((label(c)?, without_durations(c.outcome.as_ref().ok()?))))
        .collect();
    compare::compare(&reports, compare::Tolerance::DEFAULT)
}

/// The rendered table.
pub fn render(columns: &[Column], style: Style) -> String {
    let table = table(columns);
    let mut out = match style {
        Style::Text => compare::text(&table),
        Style::Markdown => compare::markdown(&table),
    };
    for c in columns {
        if let Err(e) = &c.outcome {
            let _ = writeln!(out, "\n{}: no report: {e}", c.heading);
        }
    }
    out
}

/// The matrix as one HTML page (target/matrix/index.html): a column per kernel that gave a
/// report, compared as the table compares them, each case's ladders side by side where they
/// differ; the kernels that gave none, with why.
pub fn html(columns: &[Column]) -> String {
    let reports: Vec<(String, RunReport)> = columns
        .iter()
        .filter_map(|c| Some((label(c)?, c.outcome.as_ref().ok()?.clone())))
        .collect();
    let missing: Vec<Missing> = columns
        .iter()
        .filter_map(|c| {
            let why = c.outcome.as_ref().err()?;
            Some(Missing {
                heading: c.heading.clone(),
                why: why.clone(),
            })
        })
        .collect();
    let title = format!(
        "sockconf matrix: {} kernel{}",
        columns.len(),
        if columns.len() == 1 { "" } else { "s" }
    );
    crate::html::page(&title, &reports, Some(&table(columns)), &missing)
}

fn without_durations(report: &RunReport) -> RunReport {
    let mut report = report.clone();
    for case in &mut report.cases {
        case.duration_ms = 0;
    }
    report
}

/// `host 6.18.44` for the host, the kernel release for the others, after the OS's name where
/// it is not Linux (`freebsd 14.0-STABLE`).
fn label(column: &Column) -> Option<String> {
    let environment = &column.outcome.as_ref().ok()?.environment;
    let release = match environment.os {
        harness::platform::Os::Linux => environment.kernel_release.clone(),
        os => format!("{} {}", os.name(), environment.kernel_release),
    };
    Some(if column.heading == super::HOST {
        format!("{} {release}", super::HOST)
    } else {
        release
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report from this repository's fixtures.
    fn fixture(name: &str) -> RunReport {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect(&path)
    }

    /// A column of another OS is headed by its name and release, not the release alone.
    #[test]
    fn a_freebsd_column_is_named_freebsd() {
        let mut freebsd = fixture("root.json");
        freebsd.environment.os = harness::platform::Os::Freebsd;
        freebsd.environment.kernel_release = "14.0-STABLE".into();
        let columns = [
            Column {
                heading: super::super::HOST.into(),
                outcome: Ok(fixture("root.json")),
            },
            Column {
                heading: "freebsd-14.0-STABLE".into(),
                outcome: Ok(freebsd),
            },
        ];
        let out = render(&columns, Style::Markdown);
        assert!(out.contains(" | freebsd 14.0-STABLE |"), "{out}");
    }

    /// A case a hundred times slower (as under TCG) is not a difference; only the one changed
    /// observation is.
    #[test]
    fn a_kernel_without_report_is_named_with_why_and_the_others_still_compare() {
        let mut changed = fixture("one_observation_changed.json");
        for case in &mut changed.cases {
            case.duration_ms = case.duration_ms * 100 + 1000;
        }
        let changed_release = changed.environment.kernel_release.clone();
        let columns = [
            Column {
                heading: super::super::HOST.into(),
                outcome: Ok(fixture("root.json")),
            },
            Column {
                heading: "linux-6.1.0-56".into(),
                outcome: Err("the kernel panicked".into()),
            },
            Column {
                heading: "linux-6.12.117+deb12".into(),
                outcome: Ok(changed),
            },
        ];
        let out = render(&columns, Style::Markdown);
        assert!(out.contains("### Observations that differ"), "{out}");
        assert!(!out.contains(": duration |"), "{out}");
        assert!(
            out.contains(&format!("| host {changed_release} |")),
            "{out}"
        );
        assert!(
            out.contains("linux-6.1.0-56: no report: the kernel panicked"),
            "{out}"
        );
        let page = html(&columns);
        assert!(page.contains("no report: the kernel panicked"), "{page}");
        assert!(
            page.contains("<a href=\"#close.unread_data_sends_rst@ipv4\">"),
            "the differing case is listed at the top"
        );
    }
}
