//! `sockconf explain [ID...]`: each case's specification and what it expects on Linux, macOS and
//! FreeBSD, side by side.
//!
//! [`explained`] gathers, per case and OS, the expectations with their source and provenance,
//! or the reason the case cannot apply there (from its declared needs); [`text`] lays them out
//! as one row per expected fact and one column per OS (and kernel range), marking the cells
//! that differ from Linux's, and draws the ladder the wire facts expect; [`json`] writes the
//! same as data (docs/explain-schema.md); [`markdown`] writes the README's two tables: where
//! each expectation comes from, and where macOS and FreeBSD differ from Linux.

use harness::case::Need;
use harness::report::{ExpectationReport, ExpectedFact};
use harness::{Case, Expect, Os, WireFact};
use serde::Serialize;
use std::fmt::Write;

/// The OSes every case states something for, in the order they are shown. Linux first: it is
/// the reference the others are marked against.
pub const OSES: [Os; 3] = [Os::Linux, Os::Macos, Os::Freebsd];

/// The version of `sockconf explain --format json`'s layout (docs/explain-schema.md).
pub const EXPLAIN_SCHEMA_VERSION: u32 = 1;

/// One case, as `explain` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Explained {
    pub id: String,
    pub doc: String,
    /// The case's general source (RFC, POSIX, man page); each expectation names its OS's own.
    pub source: String,
    /// The socket kinds the case runs over, one instance each (`ipv4`, `ipv6`, ...).
    pub kinds: Vec<harness::Kind>,
    /// The case's needs, one sentence each.
    pub needs: Vec<String>,
    pub variants: Vec<VariantExplained>,
    /// Linux, macOS, FreeBSD, in that order.
    pub oses: Vec<OsEntry>,
}

#[derive(Clone, Debug, Serialize)]
pub struct VariantExplained {
    pub name: String,
    pub switches: Vec<String>,
    pub needs: Vec<String>,
}

/// What one case states for one OS.
#[derive(Clone, Debug, Serialize)]
pub struct OsEntry {
    pub os: Os,
    pub status: Status,
    /// Why the case cannot apply on this OS (its `NotOn`, `OnlyOn` or Linux-only needs); null
    /// where it applies.
    pub cannot_apply: Option<String>,
    /// The expectations for this OS, one per kernel range, in the order they are tried.
    pub expectations: Vec<ExpectationReport>,
    /// The same, as declared (the ladder draws from the wire facts, not their text).
    #[serde(skip)]
    declared: Vec<&'static Expect>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// There is an expectation, and the case applies: it is run and judged.
    Expected,
    /// The case cannot apply on this OS (the reason is in `cannot_apply`); it is skipped there,
    /// and `cargo test` ignores it.
    CannotApply,
    /// Neither: the case runs there but is skipped as unjudged. The catalogue's completeness
    /// test fails on this.
    Missing,
}

impl Status {
    fn describe(self) -> &'static str {
        match self {
            Status::Expected => "expected",
            Status::CannotApply => "cannot apply",
            Status::Missing => "no expectation yet",
        }
    }
}

pub fn explained(case: &'static Case) -> Explained {
    let oses = OSES
        .iter()
        .map(|&os| {
            let cannot_apply = case.cannot_apply_on(os);
            let declared: Vec<&'static Expect> =
                case.expect.iter().filter(|e| e.os == os).collect();
            let expectations: Vec<ExpectationReport> =
                declared.iter().map(|e| (*e).into()).collect();
            let status = match (&cannot_apply, expectations.is_empty()) {
                (Some(_), _) => Status::CannotApply,
                (None, false) => Status::Expected,
                (None, true) => Status::Missing,
            };
            OsEntry {
                os,
                status,
                cannot_apply,
                expectations,
                declared,
            }
        })
        .collect();
    Explained {
        id: case.id.into(),
        doc: case.doc.into(),
        source: case.source.into(),
        kinds: case.kinds.to_vec(),
        needs: case.needs.iter().map(describe_need).collect(),
        variants: case
            .variants
            .iter()
            .map(|v| VariantExplained {
                name: v.name.into(),
                switches: v.switches.iter().map(ToString::to_string).collect(),
                needs: v.needs.iter().map(describe_need).collect(),
            })
            .collect(),
        oses,
    }
}

/// A need as a sentence.
pub fn describe_need(need: &Need) -> String {
    match *need {
        Need::Sysctl(path, value) => {
            format!("linux: sysctl {path}={value}, in the case's own network namespace")
        }
        Need::HostSysctl(os, name, value) => format!(
            "{}: sysctl {name}={value}, host-wide: only with an explicit opt-in",
            os.name()
        ),
        Need::NotOn(os, why) => format!("not on {}: {why}", os.name()),
        Need::OnlyOn(os, why) => format!("only on {}: {why}", os.name()),
        Need::SockDiag => "the kernel's socket table, to list sockets no process holds \
                           (sock_diag on Linux, the PCB list on FreeBSD and macOS)"
            .into(),
        Need::Netns(why) => format!("a private network namespace: {why}"),
    }
}

/// One column of the side-by-side table: an OS with one of its expectations, or the OS alone
/// when it has none.
struct Column<'a> {
    os: Os,
    entry: &'a OsEntry,
    expectation: Option<&'a ExpectationReport>,
    /// Its wire facts, as declared.
    wire: &'static [WireFact],
}

impl Column<'_> {
    fn head(&self) -> (String, String) {
        let second = match (self.expectation, self.entry.status) {
            (Some(e), Status::Expected) if e.kinds.is_empty() => e.kernel.clone(),
            (Some(e), Status::Expected) => {
                let kinds: Vec<&str> = e.kinds.iter().map(|k| k.name()).collect();
                format!("{}, {} only", e.kernel, kinds.join("/"))
            }
            _ => self.entry.status.describe().into(),
        };
        (self.os.name().into(), second)
    }
}

fn columns(explained: &Explained) -> Vec<Column<'_>> {
    let mut columns = vec![];
    for entry in &explained.oses {
        if entry.status == Status::Expected {
            columns.extend(
                entry
                    .expectations
                    .iter()
                    .zip(&entry.declared)
                    .map(|(e, declared)| Column {
                        os: entry.os,
                        entry,
                        expectation: Some(e),
                        wire: declared.wire,
                    }),
            );
        } else {
            columns.push(Column {
                os: entry.os,
                entry,
                expectation: None,
                wire: &[],
            });
        }
    }
    columns
}

/// One expected fact across the columns: `None` where a column does not expect it.
struct FactRow {
    label: String,
    cells: Vec<Option<String>>,
}

/// The expected facts of every column, one row per fact (side and name; wire facts by their
/// position), in the order they first appear.
fn fact_rows(columns: &[Column]) -> Vec<FactRow> {
    let mut rows: Vec<FactRow> = vec![];
    let side = |e: &ExpectationReport, side: &str| -> Vec<(String, String)> {
        let facts: &[ExpectedFact] = if side == "server" {
            &e.server
        } else {
            &e.client
        };
        facts
            .iter()
            .map(|f| (format!("{side} {}", f.name), f.expected.clone()))
            .collect()
    };
    let per_column: Vec<Vec<(String, String)>> = columns
        .iter()
        .map(|c| match c.expectation {
            Some(e) => {
                let mut facts = side(e, "server");
                facts.extend(side(e, "client"));
                facts.extend(
                    e.wire
                        .iter()
                        .enumerate()
                        .map(|(i, w)| (format!("wire #{}", i + 1), w.clone())),
                );
                facts
            }
            None => vec![],
        })
        .collect();
    for facts in &per_column {
        for (label, _) in facts {
            if !rows.iter().any(|r| &r.label == label) {
                rows.push(FactRow {
                    label: label.clone(),
                    cells: vec![],
                });
            }
        }
    }
    for row in &mut rows {
        row.cells = per_column
            .iter()
            .map(|facts| {
                facts
                    .iter()
                    .find(|(label, _)| *label == row.label)
                    .map(|(_, v)| v.clone())
            })
            .collect();
    }
    rows
}

/// The column the others are marked against: the first Linux column with an expectation.
fn reference(columns: &[Column]) -> Option<usize> {
    columns
        .iter()
        .position(|c| c.os == Os::Linux && c.expectation.is_some())
}

/// Whether cell `i` differs from the reference column's (another OS, or Linux on another
/// kernel range).
fn differs_from_reference(columns: &[Column], row: &FactRow, i: usize) -> bool {
    reference(columns)
        .is_some_and(|r| i != r && columns[i].expectation.is_some() && row.cells[i] != row.cells[r])
}

const ABSENT: &str = "-";
const DIFFERS: &str = " *";

/// The case for a terminal: its specification, then the side-by-side table, then each column's
/// source and provenance (or why the case cannot apply), then the expected ladders.
pub fn text(explained: &Explained) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}\n", explained.id);
    let _ = writeln!(out, "{}\n", wrap(&explained.doc, 78, ""));
    let _ = writeln!(
        out,
        "{}\n",
        wrap(&format!("Source: {}", explained.source), 78, "  ")
    );
    let kinds: Vec<&str> = explained.kinds.iter().map(|k| k.name()).collect();
    let _ = writeln!(out, "Runs over: {}", kinds.join(", "));
    for need in &explained.needs {
        let _ = writeln!(out, "Needs: {need}");
    }
    for v in &explained.variants {
        let _ = writeln!(
            out,
            "Variant {}: its own namespace; switches [{}]; needs [{}]",
            v.name,
            v.switches.join(", "),
            v.needs.join("; ")
        );
    }
    if !explained.needs.is_empty() || !explained.variants.is_empty() {
        out.push('\n');
    }

    let columns = columns(explained);
    let rows = fact_rows(&columns);
    let mut lines: Vec<Vec<String>> = vec![];
    let heads: Vec<(String, String)> = columns.iter().map(Column::head).collect();
    lines.push(
        std::iter::once("Expected".to_string())
            .chain(heads.iter().map(|h| h.0.clone()))
            .collect(),
    );
    lines.push(
        std::iter::once(String::new())
            .chain(heads.iter().map(|h| h.1.clone()))
            .collect(),
    );
    let mut any_differs = false;
    for row in &rows {
        let mut line = vec![format!("  {}", row.label)];
        for (i, cell) in row.cells.iter().enumerate() {
            let mut shown = match (&columns[i].expectation, cell) {
                (None, _) => String::new(),
                (Some(_), None) => ABSENT.into(),
                (Some(_), Some(v)) => v.clone(),
            };
            if differs_from_reference(&columns, row, i) {
                shown.push_str(DIFFERS);
                any_differs = true;
            }
            line.push(shown);
        }
        lines.push(line);
    }
    if columns.iter().any(|c| c.expectation.is_some()) {
        let mut provenance = vec!["  provenance".to_string()];
        provenance.extend(columns.iter().map(|c| match c.expectation {
            Some(e) => e.provenance.kind().to_string(),
            None => String::new(),
        }));
        lines.push(provenance);
    }
    out.push_str(&align(&lines));
    if let Some(r) = reference(&columns).filter(|_| any_differs) {
        let linux_columns = columns.iter().filter(|c| c.os == Os::Linux).count();
        let (os, kernel) = columns[r].head();
        let _ = match linux_columns {
            1 => writeln!(out, "  (* differs from {os})"),
            _ => writeln!(out, "  (* differs from {os}, {kernel})"),
        };
    }
    out.push('\n');

    for c in &columns {
        let (os, second) = c.head();
        match (c.expectation, &c.entry.cannot_apply) {
            (_, Some(why)) => {
                let _ = writeln!(
                    out,
                    "{}",
                    wrap(&format!("{os}: cannot apply: {why}"), 78, "    ")
                );
            }
            (Some(e), None) => {
                let _ = writeln!(out, "{os} ({second}): {}", e.provenance.describe());
                let source = if e.source.is_empty() {
                    "(not yet written down)"
                } else {
                    &e.source
                };
                let _ = writeln!(out, "  {}", wrap(&format!("source: {source}"), 76, "    "));
            }
            (None, None) => {
                let _ = writeln!(
                    out,
                    "{os}: no expectation yet: the case runs there, and is skipped as unjudged"
                );
            }
        }
    }

    // One ladder per distinct list of wire facts, named by the columns that expect it.
    let mut drawn: Vec<(Vec<String>, Vec<String>, &'static [WireFact])> = vec![];
    for (c, e) in columns.iter().filter_map(|c| c.expectation.map(|e| (c, e))) {
        if e.wire.is_empty() {
            continue;
        }
        let (os, kernel) = c.head();
        let name = format!("{os} ({kernel})");
        match drawn.iter_mut().find(|(wire, _, _)| *wire == e.wire) {
            Some((_, names, _)) => names.push(name),
            None => drawn.push((e.wire.clone(), vec![name], c.wire)),
        }
    }
    for (_, names, facts) in drawn {
        let _ = writeln!(out, "\nExpected on the wire, {}:\n", names.join(", "));
        out.push_str(&crate::ladder::expected(facts));
    }
    out
}

/// Rows of cells, each column as wide as its widest cell, two spaces apart.
fn align(lines: &[Vec<String>]) -> String {
    let width = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..width)
        .map(|i| {
            lines
                .iter()
                .map(|l| l.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

/// The cases as one JSON document (docs/explain-schema.md).
pub fn json(cases: &[Explained]) -> String {
    #[derive(Serialize)]
    struct Document<'a> {
        explain_schema_version: u32,
        oses: Vec<Os>,
        cases: &'a [Explained],
    }
    let doc = Document {
        explain_schema_version: EXPLAIN_SCHEMA_VERSION,
        oses: OSES.to_vec(),
        cases,
    };
    serde_json::to_string_pretty(&doc).expect("explanations serialise") + "\n"
}

/// The README's tables: per case and OS where the expectation comes from, and per case the
/// expected facts where macOS or FreeBSD differ from Linux.
pub fn markdown(cases: &[Explained]) -> String {
    let md = crate::compare::md;
    let mut out = String::new();
    out.push_str("### Where each expectation comes from\n\n");
    out.push_str("| case | Linux | macOS | FreeBSD |\n| --- | --- | --- | --- |\n");
    for case in cases {
        let _ = write!(out, "| `{}` |", case.id);
        for entry in &case.oses {
            let cell = match (entry.status, &entry.cannot_apply) {
                (Status::CannotApply, Some(why)) => format!("cannot apply: {}", md(why)),
                (Status::Missing, _) => "**no expectation yet**".into(),
                _ => entry
                    .expectations
                    .iter()
                    .map(|e| {
                        let kinds: Vec<&str> = e.kinds.iter().map(|k| k.name()).collect();
                        let range = match (entry.expectations.len() > 1, kinds.is_empty()) {
                            (true, true) => format!("{}: ", e.kernel),
                            (true, false) => format!("{}, {} only: ", e.kernel, kinds.join("/")),
                            (false, _) => String::new(),
                        };
                        let source = if e.source.is_empty() {
                            "**source not yet written down**".to_string()
                        } else {
                            md(&e.source)
                        };
                        format!("{range}{}; {source}", md(&e.provenance.describe()))
                    })
                    .collect::<Vec<_>>()
                    .join("<br>"),
            };
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }

    out.push_str("\n### Where macOS and FreeBSD differ from Linux\n\n");
    let mut differing = String::new();
    for case in cases {
        let columns = columns(case);
        let mut rows: Vec<(String, Vec<String>)> = vec![];
        // Where the case applies differs: one row, what each OS states.
        let applies: Vec<bool> = case.oses.iter().map(|e| e.cannot_apply.is_none()).collect();
        if applies.iter().any(|a| *a != applies[0]) {
            rows.push((
                "applies".into(),
                case.oses
                    .iter()
                    .map(|e| match &e.cannot_apply {
                        Some(why) => format!("no: {why}"),
                        None => "yes".into(),
                    })
                    .collect(),
            ));
        }
        for row in fact_rows(&columns) {
            let differing_oses: Vec<usize> = (0..columns.len())
                .filter(|&i| {
                    columns[i].os != Os::Linux && differs_from_reference(&columns, &row, i)
                })
                .collect();
            if differing_oses.is_empty() {
                continue;
            }
            // One cell per OS: its columns' values (kernel ranges joined), marked where they
            // differ from Linux's.
            let cells = OSES
                .iter()
                .map(|&os| {
                    columns
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| c.os == os)
                        .map(|(i, c)| {
                            let value = match (c.expectation, &row.cells[i]) {
                                (None, _) => c.entry.status.describe().to_string(),
                                (Some(_), None) => ABSENT.into(),
                                (Some(e), Some(v))
                                    if os == Os::Linux && c.entry.expectations.len() > 1 =>
                                {
                                    format!("{}: {v}", e.kernel)
                                }
                                (Some(_), Some(v)) => v.clone(),
                            };
                            if differing_oses.contains(&i) {
                                format!("**{value}**")
                            } else {
                                value
                            }
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .collect();
            rows.push((row.label, cells));
        }
        for (label, cells) in rows {
            let _ = write!(differing, "| `{}`: {} |", case.id, md(&label));
            for cell in cells {
                let _ = write!(differing, " {} |", md(&cell));
            }
            differing.push('\n');
        }
    }
    if differing.is_empty() {
        out.push_str("No case states a difference yet.\n");
    } else {
        out.push_str("| case: fact | Linux | macOS | FreeBSD |\n| --- | --- | --- | --- |\n");
        out.push_str(&differing);
    }
    out
}

fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("one line at least");
        if !line.trim().is_empty() && line.len() + 1 + word.len() > width {
            lines.push(format!("{indent}{word}"));
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::judge::{Kernel, Provenance};
    use harness::{is, Side, SigPipe};

    fn nothing(_: &mut harness::Ctx) {}

    const SIDE: Side = Side {
        sigpipe: SigPipe::Ignore,
        run: nothing,
    };

    const fn expect(
        os: Os,
        client: &'static [(&'static str, harness::Matcher)],
        provenance: Provenance,
    ) -> Expect {
        Expect {
            os,
            kernel: Kernel::ANY,
            source: "a test's own",
            provenance,
            kinds: &[],
            server: &[],
            client,
            wire: &[],
        }
    }

    static CASE: Case = Case {
        id: "close.example",
        doc: "An example.",
        source: "RFC 9293",
        needs: &[Need::NotOn(Os::Freebsd, "no such option on FreeBSD")],
        server: SIDE,
        client: SIDE,
        expect: &[
            expect(
                Os::Linux,
                &[("read#1", is("ECONNRESET")), ("exit", is("exit 0"))],
                Provenance::Observed(&["linux 6.1"]),
            ),
            expect(
                Os::Macos,
                &[("read#1", is("EOF")), ("exit", is("exit 0"))],
                Provenance::FromSource,
            ),
        ],
        step_deadline: Case::STEP_DEADLINE,
        variants: &[],
        kinds: harness::Kind::TCP,
    };

    #[test]
    fn every_os_has_an_entry_with_expectations_or_the_reason() {
        let e = explained(&CASE);
        let status: Vec<Status> = e.oses.iter().map(|o| o.status).collect();
        assert_eq!(
            status,
            [Status::Expected, Status::Expected, Status::CannotApply]
        );
        assert_eq!(
            e.oses[2].cannot_apply.as_deref(),
            Some("no such option on FreeBSD")
        );
        let j: serde_json::Value = serde_json::from_str(&json(&[e])).unwrap();
        let macos = &j["cases"][0]["oses"][1];
        assert_eq!(macos["os"], "macos");
        assert_eq!(macos["status"], "expected");
        assert_eq!(
            macos["expectations"][0]["provenance"],
            serde_json::json!({"kind": "from_source"})
        );
        assert_eq!(j["cases"][0]["oses"][2]["status"], "cannot_apply");
    }

    #[test]
    fn side_by_side_marks_what_differs_from_linux() {
        let out = text(&explained(&CASE));
        let row = out
            .lines()
            .find(|l| l.trim_start().starts_with("client read#1"))
            .expect(&out);
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            ["client", "read#1", "ECONNRESET", "EOF", "*"],
            "{out}"
        );
        let exit = out.lines().find(|l| l.contains("client exit")).unwrap();
        assert!(!exit.contains('*'), "{out}");
        assert!(
            out.contains("freebsd: cannot apply: no such option on FreeBSD"),
            "{out}"
        );
        assert!(
            out.contains("macos (any kernel): from source (not yet run)"),
            "{out}"
        );
    }

    #[test]
    fn markdown_names_the_differing_fact_per_os() {
        let md = markdown(&[explained(&CASE)]);
        assert!(
            md.contains("| `close.example`: client read#1 | ECONNRESET | **EOF** | cannot apply |"),
            "{md}"
        );
        assert!(
            md.contains("| `close.example`: applies | yes | yes | no: no such option on FreeBSD |"),
            "{md}"
        );
        assert!(
            md.contains("| `close.example` | observed on linux 6.1; a test's own | from source (not yet run); a test's own | cannot apply: no such option on FreeBSD |"),
            "{md}"
        );
    }
}
