//! The matrix's table: one column per kernel, one row per case whose observations differ
//! between the columns, each cell the facts that differ. A column whose kernel gave no report
//! shows its error instead.
//!
//! Interim: `sockconf compare` (issue 5) will own the comparison; this module is the one call
//! the matrix makes, to be replaced by it.

use harness::observe::{Fact, Value};
use harness::report::{CaseReport, RunReport};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One column: its heading and its report, or why there is none.
pub struct Column {
    pub heading: String,
    pub outcome: Result<RunReport, String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Text,
    Markdown,
}

/// The rendered table, plus whether any observation differed.
pub fn render(columns: &[Column], style: Style) -> (String, bool) {
    let rows = differing_rows(columns);
    let differs = !rows.is_empty();
    let mut header: Vec<String> = vec!["case".into()];
    header.extend(columns.iter().map(|c| match &c.outcome {
        Ok(r) => format!("{} ({})", c.heading, r.environment.kernel_release),
        Err(_) => c.heading.clone(),
    }));
    let mut body: Vec<Vec<String>> = vec![];
    let mut verdicts = vec!["verdicts".to_string()];
    verdicts.extend(columns.iter().map(|c| match &c.outcome {
        Ok(r) => format!(
            "{} pass, {} fail, {} skip, {} timeout",
            r.summary.passed, r.summary.failed, r.summary.skipped, r.summary.timeout
        ),
        Err(_) => "error (below)".into(),
    }));
    body.push(verdicts);
    body.extend(rows);
    if !differs {
        let mut same = vec!["(all cases)".to_string()];
        same.extend(columns.iter().map(|c| match c.outcome {
            Ok(_) => "same observations".to_string(),
            Err(_) => "-".to_string(),
        }));
        body.push(same);
    }
    let mut out = match style {
        Style::Text => text(&header, &body),
        Style::Markdown => markdown(&header, &body),
    };
    for c in columns {
        if let Err(e) = &c.outcome {
            let _ = writeln!(out, "\n{}: {e}", c.heading);
        }
    }
    (out, differs)
}

/// Per case present in any report: the cells, when the columns with reports disagree on the
/// verdict or on any fact.
fn differing_rows(columns: &[Column]) -> Vec<Vec<String>> {
    let mut ids: Vec<&str> = vec![];
    for r in columns.iter().filter_map(|c| c.outcome.as_ref().ok()) {
        for case in &r.cases {
            if !ids.contains(&case.id.as_str()) {
                ids.push(&case.id);
            }
        }
    }
    let mut rows = vec![];
    for id in ids {
        let cases: Vec<Option<&CaseReport>> = columns
            .iter()
            .map(|c| {
                c.outcome
                    .as_ref()
                    .ok()
                    .map(|r| r.cases.iter().find(|k| k.id == id))
            })
            .map(Option::flatten)
            .collect();
        let facts: Vec<Option<BTreeMap<String, String>>> =
            cases.iter().map(|c| c.map(keyed_facts)).collect();
        let present: Vec<&BTreeMap<String, String>> = facts.iter().flatten().collect();
        let mut keys: Vec<&String> = present.iter().flat_map(|m| m.keys()).collect();
        keys.sort();
        keys.dedup();
        let differing: Vec<&String> = keys
            .into_iter()
            .filter(|k| present.windows(2).any(|w| w[0].get(*k) != w[1].get(*k)))
            .collect();
        let verdicts_differ = cases
            .iter()
            .flatten()
            .collect::<Vec<_>>()
            .windows(2)
            .any(|w| w[0].verdict != w[1].verdict);
        if differing.is_empty() && !verdicts_differ {
            continue;
        }
        let mut row = vec![id.to_string()];
        for (column, case) in columns.iter().zip(&cases) {
            row.push(match (case, &column.outcome) {
                (_, Err(_)) => "-".into(),
                (None, Ok(_)) => "(not run)".into(),
                (Some(case), Ok(_)) => {
                    let facts = keyed_facts(case);
                    let mut cell = vec![case.verdict.name().to_string()];
                    cell.extend(differing.iter().map(|k| {
                        format!("{k} = {}", facts.get(*k).map_or("(none)", String::as_str))
                    }));
                    cell.join("; ")
                }
            });
        }
        rows.push(row);
    }
    rows
}

/// `server exit` → `exit 0`, with repeated names numbered in order (`client read#2`).
/// Durations are left out: they differ run to run and are judged within ranges.
fn keyed_facts(case: &CaseReport) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (side, facts) in [
        ("server", &case.observations.server),
        ("client", &case.observations.client),
    ] {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for Fact { name, value } in facts.iter() {
            let n = seen.entry(name).or_default();
            *n += 1;
            if matches!(value, Value::Millis(_)) {
                continue;
            }
            let key = if *n == 1 {
                format!("{side} {name}")
            } else {
                format!("{side} {name}@{n}")
            };
            out.insert(key, value.to_string());
        }
    }
    out
}

fn text(header: &[String], body: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            std::iter::once(header)
                .chain(body.iter().map(Vec::as_slice))
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |row: &[String]| {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        format!("{}\n", cells.join("  ").trim_end())
    };
    let mut out = line(header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&line(&rule));
    for row in body {
        out.push_str(&line(row));
    }
    out
}

fn markdown(header: &[String], body: &[Vec<String>]) -> String {
    let line = |row: &[String]| {
        let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut out = line(header);
    out.push_str(&line(&vec!["---".to_string(); header.len()]));
    for row in body {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::report::{Environment, Isolation, Sides, Summary, Verdict};

    fn report(release: &str, client_read: Value, elapsed_ms: u64) -> RunReport {
        let fact = |name: &str, value| Fact {
            name: name.into(),
            value,
        };
        let case = |id: &str, client: Vec<Fact>| CaseReport {
            id: id.into(),
            verdict: Verdict::Pass,
            detail: vec![],
            duration_ms: elapsed_ms,
            isolation: Isolation::Netns,
            observations: Sides {
                server: vec![fact("exit", Value::Exit(0))],
                client,
            },
            expectation: None,
        };
        let cases = vec![
            case("close.a", vec![fact("read", client_read)]),
            case("close.b", vec![fact("elapsed", Value::Millis(elapsed_ms))]),
        ];
        RunReport {
            schema_version: harness::report::SCHEMA_VERSION,
            environment: Environment {
                kernel_release: release.into(),
                ..Environment::here(vec!["netns".into()])
            },
            summary: Summary::of(&cases),
            cases,
        }
    }

    fn column(heading: &str, report: RunReport) -> Column {
        Column {
            heading: heading.into(),
            outcome: Ok(report),
        }
    }

    #[test]
    fn a_differing_observation_is_its_own_row_and_durations_are_not() {
        let columns = [
            column("host", report("6.18.0", Value::Eof, 3)),
            column(
                "linux-6.1",
                report("6.1.0", Value::Errno("ECONNRESET".into()), 40),
            ),
        ];
        let (out, differs) = render(&columns, Style::Markdown);
        assert!(differs);
        assert!(
            out.contains("| close.a | pass; client read = EOF | pass; client read = ECONNRESET |"),
            "{out}"
        );
        assert!(!out.contains("close.b"), "{out}");
    }

    #[test]
    fn a_column_without_report_shows_its_error_and_the_rest_still_compare() {
        let columns = [
            column("host", report("6.18.0", Value::Eof, 3)),
            Column {
                heading: "linux-6.1".into(),
                outcome: Err("the kernel panicked".into()),
            },
            column("linux-6.12", report("6.12.0", Value::Eof, 5)),
        ];
        let (out, differs) = render(&columns, Style::Text);
        assert!(!differs, "{out}");
        assert!(out.contains("same observations"), "{out}");
        assert!(out.contains("linux-6.1: the kernel panicked"), "{out}");
    }
}
