//! `sockconf compare A.json B.json ...`: reports side by side, one column per report, one row
//! per observed fact that differs. [`compare`] builds the table from reports already read (the
//! kernel matrix calls it too); [`text`], [`markdown`] and [`json`] render it.
//!
//! What counts: the facts each side observed, matched by name (and occurrence, for a name that
//! repeats), and their order; each connection's teardown shape where the traffic was captured
//! ([`harness::observe::shape`]); durations and timer values only beyond [`Tolerance`] unless
//! strict. What is shown but does not count: environment differences (a header section) and
//! cases that some reports did not run (skipped or absent), since a skip observes nothing.
//!
//! Provenance is shown where it changes how a row reads: the environment section says how
//! many cases of each report were judged against an expectation read in the source (not yet
//! observed on that OS), when that differs between reports; and a case whose observations
//! differ gets an `expectation` row when the expectations the reports judged it against differ
//! in OS, kernel range or provenance (a macOS column judged `from source` next to a Linux one
//! judged `observed`, say).

use harness::observe::shape::teardown_shapes;
use harness::report::{CaseReport, ProvenanceReport, RunReport, Verdict};
use harness::{Fact, Value};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Within this, two durations (a case's `duration_ms`, a `Millis` fact) are the same: the
/// larger of an absolute and a relative margin, so that scheduling noise on a loaded machine
/// (a few to a few hundred ms) never counts, while a timer that changed (200 ms against 1 s,
/// 30 s against 60 s) does.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Tolerance {
    pub ms: u64,
    pub percent: u64,
}

impl Tolerance {
    pub const DEFAULT: Tolerance = Tolerance {
        ms: 250,
        percent: 25,
    };
    /// `--strict`: every millisecond counts.
    pub const STRICT: Tolerance = Tolerance { ms: 0, percent: 0 };

    pub fn same(&self, a: u64, b: u64) -> bool {
        let margin = self.ms.max(a.max(b) * self.percent / 100);
        a.abs_diff(b) <= margin
    }
}

/// The comparison of several reports.
#[derive(Clone, Debug, Serialize)]
pub struct Table {
    /// One per report, in the order given.
    pub columns: Vec<Column>,
    pub tolerance: Tolerance,
    /// Environment facts that differ between the reports (kernel release is the column head).
    pub environment: Vec<Row>,
    /// Cases that some reports did not run, so their observations were not compared there:
    /// one row, `verdict`, with the skip reason or nothing where the report lacks the case.
    pub not_compared: Vec<CaseRows>,
    /// Cases whose observations differ, with exactly the facts that differ.
    pub differences: Vec<CaseRows>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Column {
    pub label: String,
    pub kernel_release: String,
}

/// One fact across the reports; `None` where a report has no such fact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    pub fact: String,
    pub cells: Vec<Option<String>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CaseRows {
    pub id: String,
    pub rows: Vec<Row>,
}

impl Table {
    /// Whether any observation differs (what the exit code says).
    pub fn differs(&self) -> bool {
        !self.differences.is_empty()
    }
}

/// Column labels for reports read from files (`(path, report)`): the kernel release; where two
/// reports share one, their isolation and privileges too, then the file name.
pub fn labels(reports: &[(String, RunReport)]) -> Vec<String> {
    let release = |r: &RunReport| r.environment.kernel_release.clone();
    let how = |r: &RunReport| {
        format!(
            "{} ({}, {})",
            r.environment.kernel_release,
            r.environment.isolation.join("+"),
            r.environment.privileges
        )
    };
    let mut labels: Vec<String> = reports.iter().map(|(_, r)| release(r)).collect();
    disambiguate(&mut labels, |i| how(&reports[i].1));
    disambiguate(&mut labels, |i| {
        let file = std::path::Path::new(&reports[i].0)
            .file_name()
            .map_or(reports[i].0.clone(), |f| f.to_string_lossy().into_owned());
        format!("{} [{file}]", how(&reports[i].1))
    });
    // The same file given twice.
    let numbered: Vec<String> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{l} #{}", i + 1))
        .collect();
    disambiguate(&mut labels, |i| numbered[i].clone());
    labels
}

/// Replace every label that is not unique by `longer(i)`.
fn disambiguate(labels: &mut [String], longer: impl Fn(usize) -> String) {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for l in labels.iter() {
        *count.entry(l.clone()).or_default() += 1;
    }
    for (i, l) in labels.iter_mut().enumerate() {
        if count[l.as_str()] > 1 {
            *l = longer(i);
        }
    }
}

/// Compare `reports`, each with its column label.
pub fn compare(reports: &[(String, RunReport)], tolerance: Tolerance) -> Table {
    let columns = reports
        .iter()
        .map(|(label, r)| Column {
            label: label.clone(),
            kernel_release: r.environment.kernel_release.clone(),
        })
        .collect();
    // An instance (a case over one kind) is the key: `close.fin_then_eof@ipv6`.
    let ids: BTreeSet<String> = reports
        .iter()
        .flat_map(|(_, r)| r.cases.iter().map(CaseReport::instance))
        .collect();
    let mut not_compared = vec![];
    let mut differences = vec![];
    for id in ids {
        let cases: Vec<Option<&CaseReport>> = reports
            .iter()
            .map(|(_, r)| r.cases.iter().find(|c| c.instance() == id))
            .collect();
        let ran: Vec<Option<&CaseReport>> = cases
            .iter()
            .map(|c| c.filter(|c| observed_anything(c)))
            .collect();
        if ran.iter().any(Option::is_none) {
            not_compared.push(CaseRows {
                id: id.to_string(),
                rows: vec![Row {
                    fact: "verdict".into(),
                    cells: cases.iter().map(|c| c.map(verdict_cell)).collect(),
                }],
            });
        }
        if ran.iter().flatten().count() < 2 {
            continue;
        }
        let mut rows = case_rows(&ran, tolerance);
        if !rows.is_empty() {
            rows.extend(expectation_row(&ran));
            differences.push(CaseRows {
                id: id.to_string(),
                rows,
            });
        }
    }
    Table {
        columns,
        tolerance,
        environment: environment_rows(reports),
        not_compared,
        differences,
    }
}

/// The expectation each report judged the case against, with its provenance, as one row;
/// `None` when they are all the same.
fn expectation_row(ran: &[Option<&CaseReport>]) -> Option<Row> {
    let cells: Vec<Option<String>> = ran
        .iter()
        .map(|c| {
            c.map(|c| match &c.expectation {
                Some(e) => format!("{} ({}, {})", e.provenance.kind(), e.os.name(), e.kernel),
                None => "none".into(),
            })
        })
        .collect();
    let present: Vec<&String> = cells.iter().flatten().collect();
    present.iter().any(|c| *c != present[0]).then(|| Row {
        fact: "expectation".into(),
        cells,
    })
}

/// A case observed something unless it was skipped before it ran.
fn observed_anything(case: &CaseReport) -> bool {
    case.verdict != Verdict::Skip
        || !case.observations.server.is_empty()
        || !case.observations.client.is_empty()
}

fn verdict_cell(case: &CaseReport) -> String {
    match &case.skip_reason {
        Some(reason) => format!("skip: {reason}"),
        None => case.verdict.name().to_string(),
    }
}

fn environment_rows(reports: &[(String, RunReport)]) -> Vec<Row> {
    let envs: Vec<_> = reports.iter().map(|(_, r)| &r.environment).collect();
    let mut rows = vec![
        Row {
            fact: "os".into(),
            cells: envs.iter().map(|e| Some(e.os.name().into())).collect(),
        },
        Row {
            fact: "arch".into(),
            cells: envs.iter().map(|e| Some(e.arch.clone())).collect(),
        },
        Row {
            fact: "sockconf_version".into(),
            cells: envs
                .iter()
                .map(|e| Some(e.sockconf_version.clone()))
                .collect(),
        },
        Row {
            fact: "isolation".into(),
            cells: envs.iter().map(|e| Some(e.isolation.join(", "))).collect(),
        },
        Row {
            fact: "privileges".into(),
            cells: envs.iter().map(|e| Some(e.privileges.clone())).collect(),
        },
    ];
    rows.push(Row {
        fact: "expectations from source".into(),
        cells: reports
            .iter()
            .map(|(_, r)| {
                let from_source = r
                    .cases
                    .iter()
                    .filter(|c| {
                        c.expectation
                            .as_ref()
                            .is_some_and(|e| e.provenance == ProvenanceReport::FromSource)
                    })
                    .count();
                Some(format!("{from_source} of {} cases", r.cases.len()))
            })
            .collect(),
    });
    let sysctls: BTreeSet<&String> = envs.iter().flat_map(|e| e.sysctls.keys()).collect();
    rows.extend(sysctls.into_iter().map(|name| Row {
        fact: format!("sysctl {name}"),
        cells: envs.iter().map(|e| e.sysctls.get(name).cloned()).collect(),
    }));
    let case_sysctls: BTreeSet<&String> = envs.iter().flat_map(|e| e.case_sysctls.keys()).collect();
    rows.extend(case_sysctls.into_iter().map(|name| {
        Row {
            fact: format!("case sysctl {name}"),
            cells: envs
                .iter()
                .map(|e| e.case_sysctls.get(name).cloned())
                .collect(),
        }
    }));
    rows.retain(|row| row.cells.iter().any(|c| *c != row.cells[0]));
    rows
}

/// The rows of one case that differ between the reports that ran it (`None` elsewhere).
fn case_rows(ran: &[Option<&CaseReport>], tolerance: Tolerance) -> Vec<Row> {
    let mut rows = vec![];
    for side in ["server", "client"] {
        let facts: Vec<Option<Vec<Keyed>>> = ran
            .iter()
            .map(|c| {
                c.map(|c| {
                    keyed(match side {
                        "server" => &c.observations.server,
                        _ => &c.observations.client,
                    })
                })
            })
            .collect();
        // Every key any report has, in the order it first appears.
        let mut keys: Vec<(String, usize)> = vec![];
        for fs in facts.iter().flatten() {
            for k in fs {
                if !keys.contains(&k.key) {
                    keys.push(k.key.clone());
                }
            }
        }
        for key in &keys {
            let values: Vec<Option<&Value>> = facts
                .iter()
                .map(|fs| {
                    fs.as_ref()
                        .and_then(|fs| fs.iter().find(|k| k.key == *key).map(|k| k.value))
                })
                .collect();
            let present: Vec<Option<&Value>> = ran
                .iter()
                .zip(&values)
                .filter(|(c, _)| c.is_some())
                .map(|(_, v)| *v)
                .collect();
            if present
                .iter()
                .any(|v| !same_value(*v, present[0], tolerance))
            {
                rows.push(Row {
                    fact: format!("{side} {}", key_label(key)),
                    cells: values.iter().map(|v| v.map(Value::to_string)).collect(),
                });
            }
        }
        // The same facts in another order is a difference too.
        let common: Vec<&(String, usize)> = keys
            .iter()
            .filter(|k| {
                facts
                    .iter()
                    .flatten()
                    .all(|fs| fs.iter().any(|f| f.key == **k))
            })
            .collect();
        let orders: Vec<Option<Vec<&(String, usize)>>> = facts
            .iter()
            .map(|fs| {
                fs.as_ref().map(|fs| {
                    fs.iter()
                        .map(|f| &f.key)
                        .filter(|k| common.contains(k))
                        .collect()
                })
            })
            .collect();
        let first = orders.iter().flatten().next();
        if orders.iter().flatten().any(|o| Some(o) != first) {
            rows.push(Row {
                fact: format!("{side} order"),
                cells: orders
                    .iter()
                    .map(|o| {
                        o.as_ref().map(|o| {
                            o.iter()
                                .map(|k| key_label(k))
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                    })
                    .collect(),
            });
        }
    }
    rows.extend(shape_rows(ran));
    let durations: Vec<u64> = ran.iter().flatten().map(|c| c.duration_ms).collect();
    if durations.iter().any(|d| !tolerance.same(*d, durations[0])) {
        rows.push(Row {
            fact: "duration".into(),
            cells: ran
                .iter()
                .map(|c| c.map(|c| format!("{} ms", c.duration_ms)))
                .collect(),
        });
    }
    rows
}

/// One row per connection whose teardown shape differs between the reports that captured the
/// case's traffic (`teardown shape`, or `teardown shape #N` where the case has several
/// connections). A report without a capture has no cell there and does not count: it saw no
/// wire, it did not see another one.
fn shape_rows(ran: &[Option<&CaseReport>]) -> Vec<Row> {
    let shapes: Vec<Option<Vec<String>>> = ran
        .iter()
        .map(|c| {
            let segments = c.and_then(|c| c.segments.as_deref())?;
            Some(
                teardown_shapes(segments)
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            )
        })
        .collect();
    let conns = shapes.iter().flatten().map(Vec::len).max().unwrap_or(0);
    (0..conns)
        .filter_map(|conn| {
            let cells: Vec<Option<String>> = shapes
                .iter()
                .map(|s| {
                    let s = s.as_ref()?;
                    Some(s.get(conn).cloned().unwrap_or_else(|| NO_CONNECTION.into()))
                })
                .collect();
            let present: Vec<&String> = cells.iter().flatten().collect();
            let differs = present.len() >= 2 && present.iter().any(|c| *c != present[0]);
            differs.then(|| Row {
                fact: match conns {
                    1 => SHAPE_ROW.to_string(),
                    _ => format!("{SHAPE_ROW} #{conn}"),
                },
                cells,
            })
        })
        .collect()
}

/// The fact name of a teardown-shape row, and what a report that captured fewer connections
/// shows in the row of one it lacks.
pub const SHAPE_ROW: &str = "teardown shape";
const NO_CONNECTION: &str = "no such connection";

/// A fact with its key: its name and how many facts of that name came before it on its side.
struct Keyed<'a> {
    key: (String, usize),
    value: &'a Value,
}

fn keyed(facts: &[Fact]) -> Vec<Keyed<'_>> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    facts
        .iter()
        .map(|f| {
            let n = seen.entry(f.name.as_str()).or_default();
            *n += 1;
            Keyed {
                key: (f.name.clone(), *n - 1),
                value: &f.value,
            }
        })
        .collect()
}

/// The row name of fact `index` among `facts` of `side` (`server` or `client`) in the table:
/// `client read#1`, `server read (occurrence 2)`.
pub fn fact_row(side: &str, facts: &[Fact], index: usize) -> String {
    let name = &facts[index].name;
    let nth = facts[..index].iter().filter(|f| f.name == *name).count();
    format!("{side} {}", key_label(&(name.clone(), nth)))
}

fn key_label((name, nth): &(String, usize)) -> String {
    match nth {
        0 => name.clone(),
        n => format!("{name} (occurrence {})", n + 1),
    }
}

fn same_value(a: Option<&Value>, b: Option<&Value>, tolerance: Tolerance) -> bool {
    match (a, b) {
        (Some(Value::Millis(x)), Some(Value::Millis(y))) => tolerance.same(*x, *y),
        _ => a == b,
    }
}

const ABSENT: &str = "-";

/// The table for a terminal: a header, then the sections that have rows, then one summary line.
pub fn text(table: &Table) -> String {
    let mut lines: Vec<Vec<String>> = vec![];
    let mut head = vec![String::new()];
    head.extend(table.columns.iter().map(|c| c.label.clone()));
    lines.push(head);
    let width = table.columns.len() + 1;
    let section = |lines: &mut Vec<Vec<String>>, title: &str, cases: &[(&str, &[Row])]| {
        if cases.iter().all(|(_, rows)| rows.is_empty()) {
            return;
        }
        lines.push(pad(vec![title.to_string()], width));
        for (id, rows) in cases {
            let indent = if id.is_empty() {
                "  "
            } else {
                lines.push(pad(vec![format!("  {id}")], width));
                "    "
            };
            for row in rows.iter() {
                let mut line = vec![format!("{indent}{}", row.fact)];
                line.extend(
                    row.cells
                        .iter()
                        .map(|c| c.as_deref().unwrap_or(ABSENT).into()),
                );
                lines.push(line);
            }
        }
    };
    section(
        &mut lines,
        "environment",
        &[("", table.environment.as_slice())],
    );
    let not_compared: Vec<(&str, &[Row])> = table
        .not_compared
        .iter()
        .map(|c| (c.id.as_str(), c.rows.as_slice()))
        .collect();
    section(
        &mut lines,
        "not compared (not run in every report)",
        &not_compared,
    );
    let differences: Vec<(&str, &[Row])> = table
        .differences
        .iter()
        .map(|c| (c.id.as_str(), c.rows.as_slice()))
        .collect();
    section(&mut lines, "observations that differ", &differences);

    let widths: Vec<usize> = (0..width)
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    let _ = writeln!(out, "{}", summary(table));
    out
}

fn pad(mut line: Vec<String>, width: usize) -> Vec<String> {
    line.resize(width, String::new());
    line
}

fn summary(table: &Table) -> String {
    let tolerance = if table.tolerance.ms == 0 && table.tolerance.percent == 0 {
        "strict".to_string()
    } else {
        format!(
            "durations within {} ms or {}%",
            table.tolerance.ms, table.tolerance.percent
        )
    };
    match table.differences.len() {
        0 => format!(
            "sockconf compare: no observation differs ({} reports, {tolerance})",
            table.columns.len()
        ),
        n => format!(
            "sockconf compare: {n} case{} differ{} ({} reports, {tolerance})",
            if n == 1 { "" } else { "s" },
            if n == 1 { "s" } else { "" },
            table.columns.len()
        ),
    }
}

/// The same table in GitHub-flavoured Markdown, one table per section.
pub fn markdown(table: &Table) -> String {
    let mut out = String::new();
    let head = |first: &str| {
        let mut h = format!("| {first} |");
        for c in &table.columns {
            let _ = write!(h, " {} |", md(&c.label));
        }
        h.push_str("\n| --- |");
        h.push_str(&" --- |".repeat(table.columns.len()));
        h.push('\n');
        h
    };
    let rows = |out: &mut String, first: &dyn Fn(&Row) -> String, rows: &[Row]| {
        for row in rows {
            let _ = write!(out, "| {} |", first(row));
            for cell in &row.cells {
                let _ = write!(out, " {} |", md(cell.as_deref().unwrap_or(ABSENT)));
            }
            out.push('\n');
        }
    };
    if !table.environment.is_empty() {
        out.push_str("### Environment\n\n");
        out.push_str(&head("environment"));
        rows(&mut out, &|r| md(&r.fact), &table.environment);
        out.push('\n');
    }
    for (title, cases) in [
        (
            "Not compared (not run in every report)",
            &table.not_compared,
        ),
        ("Observations that differ", &table.differences),
    ] {
        if cases.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {title}\n");
        out.push_str(&head("case: fact"));
        for case in cases {
            rows(
                &mut out,
                &|r| format!("`{}`: {}", case.id, md(&r.fact)),
                &case.rows,
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{}", summary(table));
    out
}

/// A Markdown table cell: pipes escaped, line breaks as spaces.
pub fn md(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The table as one JSON document, with `differs` for scripts.
pub fn json(table: &Table) -> String {
    #[derive(Serialize)]
    struct Document<'a> {
        differs: bool,
        #[serde(flatten)]
        table: &'a Table,
    }
    let doc = Document {
        differs: table.differs(),
        table,
    };
    serde_json::to_string_pretty(&doc).expect("tables serialise") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::observe::segment::Segment;
    use harness::report::Environment;
    use harness::{Os, Role};

    fn fact(name: &str, value: Value) -> Fact {
        Fact::new(name, value)
    }

    fn case(id: &str, client: Vec<Fact>, ms: u64) -> CaseReport {
        let mut c = CaseReport::new(id, harness::Kind::Ipv4);
        c.conclude(Verdict::Pass, vec![]);
        c.observations.client = client;
        c.duration_ms = ms;
        c
    }

    fn report(release: &str, cases: Vec<CaseReport>) -> (String, RunReport) {
        let mut env = Environment::here(vec!["netns".into()]);
        env.kernel_release = release.into();
        (release.into(), RunReport::new(env, cases))
    }

    fn reset() -> Vec<Fact> {
        vec![
            fact("read", Value::Errno("ECONNRESET".into())),
            fact("linger", Value::Millis(1000)),
        ]
    }

    #[test]
    fn identical_reports_do_not_differ() {
        let a = report("6.1.0", vec![case("close.x", reset(), 3)]);
        let b = report("6.18.0", vec![case("close.x", reset(), 90)]);
        let t = compare(&[a, b], Tolerance::DEFAULT);
        assert!(!t.differs(), "{t:?}");
        assert!(t.environment.is_empty() && t.not_compared.is_empty());
    }

    #[test]
    fn one_changed_fact_is_exactly_one_row() {
        let mut changed = reset();
        changed[0].value = Value::Eof;
        let a = report("6.1.0", vec![case("close.x", reset(), 3)]);
        let b = report("6.18.0", vec![case("close.x", changed, 3)]);
        let t = compare(&[a, b], Tolerance::DEFAULT);
        assert_eq!(t.differences.len(), 1);
        assert_eq!(
            t.differences[0].rows,
            [Row {
                fact: "client read".into(),
                cells: vec![Some("ECONNRESET".into()), Some("EOF".into())]
            }]
        );
    }

    #[test]
    fn timers_and_durations_count_only_beyond_the_tolerance_or_when_strict() {
        let mut slower = reset();
        slower[1].value = Value::Millis(1100);
        let a = report("6.1.0", vec![case("close.x", reset(), 3)]);
        let b = report("6.18.0", vec![case("close.x", slower, 40)]);
        let reports = [a, b];
        assert!(!compare(&reports, Tolerance::DEFAULT).differs());
        let strict = compare(&reports, Tolerance::STRICT);
        let facts: Vec<&str> = strict.differences[0]
            .rows
            .iter()
            .map(|r| r.fact.as_str())
            .collect();
        assert_eq!(facts, ["client linger", "duration"]);
        let mut halved = reset();
        halved[1].value = Value::Millis(200);
        let c = report("6.2.0", vec![case("close.x", halved, 3)]);
        assert!(compare(&[reports[0].clone(), c], Tolerance::DEFAULT).differs());
    }

    #[test]
    fn an_extra_fact_is_its_own_row_and_does_not_shift_the_others() {
        let mut extra = reset();
        extra.insert(0, fact("write", Value::Ok(5)));
        let a = report("6.1.0", vec![case("close.x", reset(), 3)]);
        let b = report("6.18.0", vec![case("close.x", extra, 3)]);
        let t = compare(&[a, b], Tolerance::DEFAULT);
        assert_eq!(
            t.differences[0].rows,
            [Row {
                fact: "client write".into(),
                cells: vec![None, Some("ok(5)".into())]
            }]
        );
    }

    #[test]
    fn reordered_facts_show_the_order() {
        let mut swapped = reset();
        swapped.swap(0, 1);
        let a = report("6.1.0", vec![case("close.x", reset(), 3)]);
        let b = report("6.18.0", vec![case("close.x", swapped, 3)]);
        let t = compare(&[a, b], Tolerance::DEFAULT);
        assert_eq!(t.differences[0].rows[0].fact, "client order");
    }

    #[test]
    fn skipped_and_absent_cases_are_listed_not_counted() {
        let mut skipped = CaseReport::new("close.x", harness::Kind::Ipv4);
        skipped.conclude(Verdict::Skip, vec!["needs a sysctl".into()]);
        let a = report("6.1.0", vec![case("close.x", reset(), 3)]);
        let b = report("6.18.0", vec![skipped, case("close.y", reset(), 3)]);
        let t = compare(&[a, b], Tolerance::DEFAULT);
        assert!(!t.differs());
        let cells: Vec<_> = t.not_compared.iter().map(|c| &c.rows[0].cells).collect();
        assert_eq!(
            cells,
            [
                &vec![Some("pass".into()), Some("skip: needs a sysctl".into())],
                &vec![None, Some("pass".into())]
            ]
        );
    }

    fn captured(flags: &[(Role, &str)]) -> Option<Vec<Segment>> {
        Some(
            flags
                .iter()
                .map(|(from, f)| Segment {
                    at_us: 0,
                    conn: 0,
                    from: *from,
                    flags: f.to_string().try_into().unwrap(),
                    seq: 0,
                    ack: 0,
                    len: 0,
                })
                .collect(),
        )
    }

    /// A capture that ends with a FIN on one kernel and a RST on another is a row; a report
    /// without a capture is no cell, and alone with one that has it, no row.
    #[test]
    fn teardown_shapes_count_where_both_were_captured() {
        use Role::{Client, Server};
        let with = |segments| {
            let mut c = case("close.x", reset(), 3);
            c.segments = segments;
            c
        };
        let fin = captured(&[(Client, "SYN"), (Server, "SYN|ACK"), (Client, "FIN|ACK")]);
        let rst = captured(&[(Client, "SYN"), (Server, "SYN|ACK"), (Client, "RST|ACK")]);
        let a = report("6.1.0", vec![with(fin.clone())]);
        let b = report("6.18.0", vec![with(rst)]);
        let c = report("6.12.0", vec![with(None)]);
        let t = compare(&[a.clone(), b, c.clone()], Tolerance::DEFAULT);
        assert_eq!(
            t.differences[0].rows,
            [Row {
                fact: SHAPE_ROW.into(),
                cells: vec![
                    Some("client FIN|ACK; server none".into()),
                    Some("client RST|ACK; server none".into()),
                    None
                ]
            }]
        );
        assert!(!compare(&[a, c], Tolerance::DEFAULT).differs());
    }

    #[test]
    fn equal_releases_are_told_apart() {
        let (_, a) = report("6.18.0", vec![]);
        let mut b = a.clone();
        b.environment.privileges = "uid 65534".into();
        let c = a.clone();
        let labels = labels(&[
            ("dir/root.json".into(), a),
            ("unpriv.json".into(), b),
            ("again.json".into(), c),
        ]);
        assert_eq!(labels[1], "6.18.0 (netns, uid 65534)");
        assert!(labels[0].ends_with("[root.json]"), "{labels:?}");
        assert!(labels[2].ends_with("[again.json]"), "{labels:?}");
    }

    #[test]
    fn a_differing_case_names_the_provenance_of_what_each_report_judged_it_against() {
        use harness::report::ExpectationReport;
        let judged = |os, provenance, client: Vec<Fact>| {
            let mut c = case("close.x", client, 3);
            c.expectation = Some(ExpectationReport {
                os,
                kernel: "any kernel".into(),
                source: "a test's own".into(),
                provenance,
                server: vec![],
                client: vec![],
                wire: vec![],
                kinds: vec![],
            });
            c
        };
        let observed = ProvenanceReport::Observed {
            on: vec!["linux 6.1".into()],
        };
        let mut changed = reset();
        changed[0].value = Value::Eof;
        let linux = report("6.1.0", vec![judged(Os::Linux, observed.clone(), reset())]);
        let macos = report(
            "24.1.0",
            vec![judged(Os::Macos, ProvenanceReport::FromSource, changed)],
        );
        let t = compare(&[linux.clone(), macos], Tolerance::DEFAULT);
        let rows = &t.differences[0].rows;
        assert_eq!(
            rows.last().unwrap(),
            &Row {
                fact: "expectation".into(),
                cells: vec![
                    Some("observed (linux, any kernel)".into()),
                    Some("from source (macos, any kernel)".into())
                ]
            }
        );
        let from_source = t
            .environment
            .iter()
            .find(|r| r.fact == "expectations from source")
            .expect("shown where it differs");
        assert_eq!(
            from_source.cells,
            [Some("0 of 1 cases".into()), Some("1 of 1 cases".into())]
        );
        // The same expectation on both sides adds no row, and no difference of its own.
        let again = report("6.12.0", vec![judged(Os::Linux, observed, reset())]);
        let t = compare(&[linux, again], Tolerance::DEFAULT);
        assert!(!t.differs() && t.environment.is_empty(), "{t:?}");
    }

    #[test]
    fn renderers_show_every_row() {
        let mut changed = reset();
        changed[0].value = Value::Errno("EPIPE|x".into());
        let a = report("6.1.0", vec![case("close.x", reset(), 3)]);
        let b = report("6.18.0", vec![case("close.x", changed, 3)]);
        let t = compare(&[a, b], Tolerance::DEFAULT);
        let text = text(&t);
        assert!(text.contains("close.x"), "{text}");
        assert!(!text.contains("environment"), "no empty section: {text}");
        let row = text.lines().find(|l| l.contains("client read")).unwrap();
        assert!(row.ends_with("ECONNRESET  EPIPE|x"), "{text}");
        let md = markdown(&t);
        assert!(
            md.contains("| `close.x@ipv4`: client read | ECONNRESET | EPIPE\\|x |"),
            "{md}"
        );
        let j: serde_json::Value = serde_json::from_str(&json(&t)).unwrap();
        assert_eq!(j["differs"], true);
        assert_eq!(j["differences"][0]["rows"][0]["cells"][1], "EPIPE|x");
    }
}
