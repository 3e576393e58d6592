//! The HTML report: one self-contained page (inline CSS and SVG; no script, font or image
//! fetched) for one run (`sockconf run --html`), for saved reports (`sockconf report --html`),
//! or for the kernel matrix (target/matrix/index.html).
//!
//! At the top a summary: counts per verdict and per family, then the cases that did not pass
//! and those whose observations differ between reports, each a link. Then one `<section
//! id="ID" class="case">` per case, failures first: verdict, specification and source, each
//! side's facts (expected beside observed, the differences marked), notes, and the ladder
//! drawn as SVG (`svg`), with the expected ladder beside it when the case failed. With several
//! reports there is one column per report; a case whose observations or teardown shape differ
//! shows every column's ladder side by side, with what differs marked.
//!
//! The markup is XHTML-compatible (every element closed, attributes quoted, no named entities
//! beyond XML's), so that the tests read it with an XML parser.

pub mod svg;

use crate::compare::{self, CaseRows, Table, Tolerance, SHAPE_ROW};
use crate::ladder;
use crate::xml::{attr, text};
use harness::observe::shape::teardown_shapes;
use harness::report::{CaseReport, ExpectationReport, RunReport, Verdict};
use harness::{Case, Expect, Provenance, Role};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use svg::Marks;

/// A kernel the page has a column for but no report from (a matrix VM that failed): its
/// heading and why.
pub struct Missing {
    pub heading: String,
    pub why: String,
}

/// The title of one run's page: `sockconf on linux 6.18.44 (x86_64)`.
pub fn title(report: &RunReport) -> String {
    let e = &report.environment;
    format!(
        "sockconf on {} {} ({})",
        e.os.name(),
        e.kernel_release,
        e.arch
    )
}

/// The page for `reports` (label, report), one column each. `table` is their comparison when
/// the caller made it its own way (the matrix leaves durations out); otherwise it is made here.
pub fn page(
    title: &str,
    reports: &[(String, RunReport)],
    table: Option<&Table>,
    missing: &[Missing],
) -> String {
    let catalogue: BTreeMap<&str, &'static Case> =
        cases::all().into_iter().map(|c| (c.id, c)).collect();
    let owned;
    let table = match table {
        _ if reports.len() < 2 => None,
        Some(t) => Some(t),
        None => {
            owned = compare::compare(reports, Tolerance::DEFAULT);
            Some(&owned)
        }
    };
    let page = Page {
        reports,
        table,
        catalogue,
    };
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n");
    let _ = writeln!(out, "<title>{}</title>", text(title));
    let _ = writeln!(out, "<style>{CSS}</style>\n</head>\n<body>");
    let _ = writeln!(out, "<header>\n<h1>{}</h1>", text(title));
    page.environment(&mut out, missing);
    out.push_str("</header>\n");
    let ids = page.ordered_ids();
    page.summary(&mut out, &ids);
    out.push_str("<main>\n");
    for id in &ids {
        page.case(&mut out, id);
    }
    out.push_str("</main>\n<footer>Written by sockconf ");
    out.push_str(env!("CARGO_PKG_VERSION"));
    out.push_str(
        ". Self-contained: no script, font or image is fetched.</footer>\n</body>\n</html>\n",
    );
    out
}

struct Page<'a> {
    reports: &'a [(String, RunReport)],
    table: Option<&'a Table>,
    catalogue: BTreeMap<&'static str, &'static Case>,
}

/// How a case sorts on the page: what needs looking at first.
fn rank(verdicts: &[Option<Verdict>], differs: bool) -> u8 {
    if verdicts
        .iter()
        .flatten()
        .any(|v| matches!(v, Verdict::Fail | Verdict::Timeout))
    {
        0
    } else if differs {
        1
    } else if verdicts.iter().flatten().any(|v| *v == Verdict::Skip) {
        2
    } else {
        3
    }
}

fn family(id: &str) -> &str {
    id.split('.').next().unwrap_or(id)
}

impl Page<'_> {
    fn multi(&self) -> bool {
        self.reports.len() > 1
    }

    fn cases(&self, id: &str) -> Vec<Option<&CaseReport>> {
        self.reports
            .iter()
            .map(|(_, r)| r.cases.iter().find(|c| c.instance() == id))
            .collect()
    }

    fn difference(&self, id: &str) -> Option<&CaseRows> {
        self.table?.differences.iter().find(|c| c.id == id)
    }

    fn not_compared(&self, id: &str) -> Option<&CaseRows> {
        self.table?.not_compared.iter().find(|c| c.id == id)
    }

    /// Every case id of every report: failures first, then differences, skips, passes; by id
    /// within each.
    fn ordered_ids(&self) -> Vec<String> {
        let ids: BTreeSet<String> = self
            .reports
            .iter()
            .flat_map(|(_, r)| r.cases.iter().map(CaseReport::instance))
            .collect();
        let mut ids: Vec<(u8, String)> = ids
            .into_iter()
            .map(|id| {
                let verdicts: Vec<Option<Verdict>> = self
                    .cases(&id)
                    .iter()
                    .map(|c| c.map(|c| c.verdict))
                    .collect();
                (rank(&verdicts, self.difference(&id).is_some()), id)
            })
            .collect();
        ids.sort();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    fn environment(&self, out: &mut String, missing: &[Missing]) {
        out.push_str("<table class=\"environment\">\n<tr><th></th><th>kernel</th><th>os</th><th>isolation</th><th>privileges</th><th>sockconf</th></tr>\n");
        for (label, r) in self.reports {
            let e = &r.environment;
            let _ = writeln!(
                out,
                "<tr><th>{}</th><td>{}</td><td>{} ({})</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                text(label),
                text(&e.kernel_release),
                text(e.os.name()),
                text(&e.arch),
                text(&e.isolation.join(", ")),
                text(&e.privileges),
                text(&e.sockconf_version)
            );
        }
        for m in missing {
            let _ = writeln!(
                out,
                "<tr class=\"missing\"><th>{}</th><td colspan=\"5\">no report: {}</td></tr>",
                text(&m.heading),
                text(&m.why)
            );
        }
        out.push_str("</table>\n");
        if let Some(table) = self.table {
            if !table.environment.is_empty() {
                out.push_str("<h3>Environment that differs (shown, not counted)</h3>\n");
                self.rows_table(out, "environment", &table.environment);
            }
        }
    }

    fn summary(&self, out: &mut String, ids: &[String]) {
        out.push_str("<nav id=\"summary\">\n<h2>Summary</h2>\n<table class=\"summary\">\n<tr><th>family</th>");
        for (label, _) in self.reports {
            let _ = write!(out, "<th>{}</th>", text(label));
        }
        out.push_str("</tr>\n");
        let families: BTreeSet<&str> = ids.iter().map(|id| family(id)).collect();
        let all = std::iter::once(None).chain(families.into_iter().map(Some));
        for fam in all {
            let _ = write!(
                out,
                "<tr{}><th>{}</th>",
                if fam.is_none() {
                    " class=\"total\""
                } else {
                    ""
                },
                text(fam.unwrap_or("all"))
            );
            for (_, r) in self.reports {
                let mut cells: Vec<(Verdict, usize)> = vec![];
                for v in [
                    Verdict::Fail,
                    Verdict::Timeout,
                    Verdict::Skip,
                    Verdict::Pass,
                ] {
                    let n = r
                        .cases
                        .iter()
                        .filter(|c| fam.is_none_or(|f| family(&c.id) == f) && c.verdict == v)
                        .count();
                    if n > 0 {
                        cells.push((v, n));
                    }
                }
                out.push_str("<td>");
                let shown: Vec<String> = cells
                    .iter()
                    .map(|(v, n)| format!("<span class=\"verdict {0}\">{n} {0}</span>", v.name()))
                    .collect();
                out.push_str(&shown.join(" "));
                out.push_str("</td>");
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");

        let not_passed: Vec<&String> = ids
            .iter()
            .filter(|id| {
                self.cases(id)
                    .iter()
                    .flatten()
                    .any(|c| matches!(c.verdict, Verdict::Fail | Verdict::Timeout))
            })
            .collect();
        if !not_passed.is_empty() {
            out.push_str("<h3>Failed or timed out</h3>\n<ul class=\"links failed\">");
            for id in not_passed {
                let verdicts: Vec<String> = self
                    .cases(id)
                    .iter()
                    .zip(self.reports)
                    .filter_map(|(c, (label, _))| {
                        let c = (*c)?;
                        let v = c.verdict.name();
                        Some(if self.multi() {
                            format!("<span class=\"verdict {v}\">{}: {v}</span>", text(label))
                        } else {
                            format!("<span class=\"verdict {v}\">{v}</span>")
                        })
                    })
                    .collect();
                let _ = write!(
                    out,
                    "<li><a href=\"#{}\">{}</a> {}</li>",
                    attr(id),
                    text(id),
                    verdicts.join(" ")
                );
            }
            out.push_str("</ul>\n");
        }
        if let Some(table) = self.table {
            out.push_str("<h3>Observations that differ between the reports</h3>\n");
            if table.differences.is_empty() {
                out.push_str("<p>None: every case observed the same facts and teardown shapes in every report that ran it.</p>\n");
            } else {
                out.push_str("<ul class=\"links differs\">");
                for c in &table.differences {
                    let facts: Vec<&str> = c.rows.iter().map(|r| r.fact.as_str()).collect();
                    let _ = write!(
                        out,
                        "<li><a href=\"#{}\">{}</a>: {}</li>",
                        attr(&c.id),
                        text(&c.id),
                        text(&facts.join(", "))
                    );
                }
                out.push_str("</ul>\n");
            }
        }
        out.push_str("<h3>Every case</h3>\n<p class=\"index\">");
        let mut by_id: Vec<&String> = ids.iter().collect();
        by_id.sort();
        let links: Vec<String> = by_id
            .iter()
            .map(|id| format!("<a href=\"#{}\">{}</a>", attr(id), text(id)))
            .collect();
        out.push_str(&links.join(" "));
        out.push_str("</p>\n</nav>\n");
    }

    fn case(&self, out: &mut String, id: &str) {
        let cases = self.cases(id);
        let verdicts: BTreeSet<&str> = cases.iter().flatten().map(|c| c.verdict.name()).collect();
        let worst = ["fail", "timeout", "skip", "pass"]
            .into_iter()
            .find(|v| verdicts.contains(v))
            .unwrap_or("skip");
        let difference = self.difference(id);
        let _ = write!(
            out,
            "<section id=\"{}\" class=\"case {worst}{}\">\n<h2><a class=\"id\" href=\"#{0}\">{}</a>",
            attr(id),
            if difference.is_some() { " differs" } else { "" },
            text(id)
        );
        for (c, (label, _)) in cases.iter().zip(self.reports) {
            match c {
                Some(c) => {
                    let v = c.verdict.name();
                    let _ = write!(
                        out,
                        " <span class=\"verdict {v}\">{}{v}</span>",
                        if self.multi() {
                            format!("{}: ", text(label))
                        } else {
                            String::new()
                        }
                    );
                }
                None => {
                    let _ = write!(
                        out,
                        " <span class=\"verdict absent\">{}: not run</span>",
                        text(label)
                    );
                }
            }
        }
        if !self.multi() {
            if let Some(c) = cases[0] {
                let _ = write!(out, " <span class=\"duration\">{} ms</span>", c.duration_ms);
            }
        }
        out.push_str("</h2>\n");
        if let Some(case) = self.catalogue.get(id) {
            let _ = writeln!(
                out,
                "<p class=\"doc\">{}</p>\n<p class=\"source\">Source: {}</p>",
                text(case.doc),
                text(case.source)
            );
        }
        if self.multi() {
            self.case_columns(out, id, &cases, difference);
        } else if let Some(c) = cases[0] {
            self.case_single(out, c);
        }
        out.push_str("</section>\n");
    }

    /// One report's case: why, notes, the facts expected beside observed, teardown shapes,
    /// the ladder (and the expected one beside it when the case failed).
    fn case_single(&self, out: &mut String, c: &CaseReport) {
        why_and_notes(out, c);
        out.push_str("<div class=\"detail\"><div class=\"info\">\n");
        let catalogued = c.expectation.as_ref().and_then(|e| self.catalogued(c, e));
        facts_table(out, c, catalogued);
        if let Some(e) = &c.expectation {
            wire_facts(out, e);
        }
        shapes(out, c);
        out.push_str("</div>\n<div class=\"ladders\">");
        let mut drawn = false;
        if let Some(l) = ladder::observed_ladder(c) {
            figure(
                out,
                "observed",
                &svg::ladder(
                    &l,
                    "observed",
                    &format!("{}: observed", c.id),
                    &Marks::default(),
                ),
            );
            drawn = true;
        }
        if matches!(c.verdict, Verdict::Fail | Verdict::Timeout) {
            drawn |= self.expected_figure(out, c);
        }
        if !drawn {
            out.push_str("<p class=\"none\">No ladder: nothing was captured (the notes say why, where the case has wire facts).</p>");
        }
        out.push_str("</div></div>\n");
    }

    /// The expected ladder of `c`'s expectation, from the catalogue's wire facts; false if
    /// there are none.
    fn expected_figure(&self, out: &mut String, c: &CaseReport) -> bool {
        let Some(wire) = c
            .expectation
            .as_ref()
            .and_then(|e| self.expected_wire(c, e))
        else {
            return false;
        };
        let l = ladder::expected_ladder(wire);
        figure(
            out,
            "expected (from the wire facts)",
            &svg::ladder(
                &l,
                "expected",
                &format!("{}: expected", c.id),
                &Marks::default(),
            ),
        );
        true
    }

    /// The catalogue's expectation that a report's expectation names (by OS and kernel range).
    /// The catalogue's expectation that a report's instance was judged against: same OS,
    /// kernel range and kind.
    fn catalogued(&self, c: &CaseReport, e: &ExpectationReport) -> Option<&'static Expect> {
        let case = self.catalogue.get(c.id.as_str())?;
        case.expect
            .iter()
            .find(|x| x.os == e.os && x.kernel.describe() == e.kernel && x.applies_to(c.kind))
    }

    /// The wire facts of the catalogue's expectation that a report's expectation names.
    fn expected_wire(
        &self,
        c: &CaseReport,
        e: &ExpectationReport,
    ) -> Option<&'static [harness::WireFact]> {
        self.catalogued(c, e)
            .map(|x| x.wire)
            .filter(|w| !w.is_empty())
    }

    /// Several reports' case: a table with a column per report, what differs marked; the
    /// ladders side by side where something differs, else the first report's.
    fn case_columns(
        &self,
        out: &mut String,
        id: &str,
        cases: &[Option<&CaseReport>],
        difference: Option<&CaseRows>,
    ) {
        let differing: BTreeSet<&str> = difference
            .map(|d| d.rows.iter().map(|r| r.fact.as_str()).collect())
            .unwrap_or_default();
        out.push_str("<table class=\"columns\">\n<tr><th></th>");
        for (label, _) in self.reports {
            let _ = write!(out, "<th>{}</th>", text(label));
        }
        out.push_str("</tr>\n");
        let cell_row =
            |out: &mut String, name: &str, marked: bool, cell: &dyn Fn(&CaseReport) -> String| {
                let _ = write!(
                    out,
                    "<tr{}><th>{}</th>",
                    if marked { " class=\"differs\"" } else { "" },
                    text(name)
                );
                for c in cases {
                    let _ = write!(
                        out,
                        "<td>{}</td>",
                        c.map_or("<span class=\"absent\">not run</span>".to_string(), cell)
                    );
                }
                out.push_str("</tr>\n");
            };
        cell_row(out, "verdict", self.not_compared(id).is_some(), &|c| {
            let mut s = format!("<span class=\"verdict {0}\">{0}</span>", c.verdict.name());
            for line in c.why() {
                let _ = write!(s, "<br/>{}", text(line));
            }
            s
        });
        for (side, role) in [("server", Role::Server), ("client", Role::Client)] {
            // The facts that differ are marked in the cells, not the whole row.
            cell_row(out, side, false, &|c| {
                let facts = match role {
                    Role::Server => &c.observations.server,
                    Role::Client => &c.observations.client,
                };
                let lines: Vec<String> = facts
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let line = text(&format!("{} = {}", f.name, f.value));
                        if differing.contains(compare::fact_row(side, facts, i).as_str()) {
                            format!("<span class=\"differs\">{line}</span>")
                        } else {
                            line
                        }
                    })
                    .collect();
                lines.join("<br/>")
            });
        }
        cell_row(out, "expectation", false, &|c| {
            let Some(e) = &c.expectation else {
                return "<span class=\"absent\">none</span>".into();
            };
            let mut cell = text(&format!("{}, {}", e.os.name(), e.kernel));
            if let Some(x) = self.catalogued(c, e) {
                let _ = write!(cell, "<br/>{}", text(&x.provenance.describe()));
            }
            cell
        });
        let shape_marked = differing.iter().any(|f| f.starts_with(SHAPE_ROW));
        cell_row(out, SHAPE_ROW, shape_marked, &|c| match &c.segments {
            None => "<span class=\"absent\">not captured</span>".into(),
            Some(segs) => {
                let lines: Vec<String> = teardown_shapes(segs)
                    .iter()
                    .map(|s| text(&shape_line(s, segs.iter().any(|s| s.conn > 0))))
                    .collect();
                lines.join("<br/>")
            }
        });
        cell_row(out, "notes", false, &|c| {
            let notes: Vec<String> = c.notes.iter().map(|n| text(n)).collect();
            notes.join("<br/>")
        });
        out.push_str("</table>\n");
        if let Some(d) = difference {
            out.push_str("<p class=\"differs-note\">What differs, as <code>sockconf compare</code> counts it:</p>\n");
            self.rows_table(out, "fact", &d.rows);
        }

        out.push_str("<div class=\"ladders\">");
        if let Some(e) = cases
            .iter()
            .flatten()
            .find(|c| matches!(c.verdict, Verdict::Fail | Verdict::Timeout))
        {
            self.expected_figure(out, e);
        }
        let mut drawn = false;
        for (c, (label, _)) in cases.iter().zip(self.reports) {
            let Some(c) = c else { continue };
            let Some(l) = ladder::observed_ladder(c) else {
                continue;
            };
            let marks = marks(c, &differing);
            let caption = if difference.is_some() {
                format!("observed on {label}")
            } else {
                format!("observed on {label} (no other column differs)")
            };
            figure(
                out,
                &caption,
                &svg::ladder(&l, "observed", &format!("{id}: {caption}"), &marks),
            );
            drawn = true;
            if difference.is_none() {
                break;
            }
        }
        if !drawn {
            out.push_str(
                "<p class=\"none\">No ladder: no report captured this case's traffic.</p>",
            );
        }
        out.push_str("</div>\n");
    }

    /// Compare's rows as a table: the first column names the fact, the others hold the cells.
    fn rows_table(&self, out: &mut String, first: &str, rows: &[compare::Row]) {
        let _ = write!(out, "<table class=\"rows\">\n<tr><th>{}</th>", text(first));
        for (label, _) in self.reports {
            let _ = write!(out, "<th>{}</th>", text(label));
        }
        out.push_str("</tr>\n");
        for row in rows {
            let _ = write!(out, "<tr><th>{}</th>", text(&row.fact));
            for cell in &row.cells {
                let _ = write!(
                    out,
                    "<td>{}</td>",
                    cell.as_deref()
                        .map_or("<span class=\"absent\">-</span>".into(), text)
                );
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
}

/// What to mark on `c`'s ladder: its segments in a teardown whose shape differs, and its
/// notes whose facts differ.
fn marks(c: &CaseReport, differing: &BTreeSet<&str>) -> Marks {
    let mut marks = Marks::default();
    for (side, facts, set) in [
        ("client", &c.observations.client, &mut marks.client_facts),
        ("server", &c.observations.server, &mut marks.server_facts),
    ] {
        for i in 0..facts.len() {
            if differing.contains(compare::fact_row(side, facts, i).as_str()) {
                set.insert(i);
            }
        }
    }
    if let Some(segs) = &c.segments {
        let shapes = teardown_shapes(segs);
        for shape in &shapes {
            let row = match shapes.len() {
                1 => SHAPE_ROW.to_string(),
                _ => format!("{SHAPE_ROW} #{}", shape.conn),
            };
            if differing.contains(row.as_str()) {
                marks.segments.extend(
                    segs.iter()
                        .enumerate()
                        .filter(|(i, s)| shape.covers(*i, s))
                        .map(|(i, _)| i),
                );
            }
        }
    }
    marks
}

fn shape_line(shape: &harness::observe::shape::TeardownShape, many: bool) -> String {
    if many {
        format!("#{}: {shape}", shape.conn)
    } else {
        shape.to_string()
    }
}

fn figure(out: &mut String, caption: &str, svg: &str) {
    let _ = write!(
        out,
        "<figure><figcaption>{}</figcaption>{svg}</figure>",
        text(caption)
    );
}

fn why_and_notes(out: &mut String, c: &CaseReport) {
    let why = c.why();
    if !why.is_empty() {
        let class = if c.verdict == Verdict::Skip {
            "skipped"
        } else {
            "why"
        };
        let _ = write!(out, "<ul class=\"{class}\">");
        for line in why {
            let _ = write!(out, "<li>{}</li>", text(line));
        }
        out.push_str("</ul>\n");
    }
    if !c.notes.is_empty() {
        out.push_str("<ul class=\"notes\">");
        for n in &c.notes {
            let _ = write!(out, "<li>{}</li>", text(n));
        }
        out.push_str("</ul>\n");
    }
}

/// Each side's facts, position by position as the judge compares them, expected beside
/// observed; a position the verdict names as different is marked.
fn facts_table(out: &mut String, c: &CaseReport, catalogued: Option<&Expect>) {
    let judged = c.expectation.as_ref();
    if let Some(e) = judged {
        let _ = writeln!(
            out,
            "<p class=\"expectation\">Judged against the expectation for {}, {}.</p>",
            text(e.os.name()),
            text(&e.kernel)
        );
    }
    if let Some(x) = catalogued {
        provenance(out, x);
    }
    out.push_str("<table class=\"facts\">\n<tr><th>side</th><th>#</th><th>expected</th><th>observed</th><th>at ms</th></tr>\n");
    for (side, observed, expected) in [
        (
            "server",
            &c.observations.server,
            judged.map(|e| e.server.as_slice()),
        ),
        (
            "client",
            &c.observations.client,
            judged.map(|e| e.client.as_slice()),
        ),
    ] {
        let n = observed.len().max(expected.map_or(0, <[_]>::len));
        for i in 0..n {
            // The judge's lines name a position as `client #3 ...` or `client #3: ...`.
            let at = format!("{side} #{i}");
            let differs = c.failure.iter().any(|l| {
                l.strip_prefix(&at)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with(':'))
            });
            let o = observed.get(i);
            let _ = writeln!(
                out,
                "<tr{}><th>{side}</th><td>{i}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                if differs { " class=\"differs\"" } else { "" },
                expected
                    .and_then(|e| e.get(i))
                    .map_or(String::new(), |e| text(&format!("{} = {}", e.name, e.expected))),
                o.map_or(String::new(), |o| text(&format!("{} = {}", o.name, o.value))),
                o.and_then(|o| o.at_us)
                    .map_or(String::new(), |us| format!("{:.3}", us as f64 / 1000.0))
            );
        }
    }
    out.push_str("</table>\n");
}

/// Where the expectation comes from, as this sockconf's catalogue declares it: its source, and
/// whether it was observed (on which releases) or read in the source only.
fn provenance(out: &mut String, x: &Expect) {
    let class = match x.provenance {
        Provenance::Observed(_) => "observed",
        Provenance::FromSource => "from-source",
    };
    let source = if x.source.is_empty() {
        String::new()
    } else {
        format!("; its source: {}", text(x.source))
    };
    let _ = writeln!(
        out,
        "<p class=\"provenance\">Expectation <span class=\"{class}\">{}</span>{source}.</p>",
        text(&x.provenance.describe())
    );
}

fn wire_facts(out: &mut String, e: &ExpectationReport) {
    if e.wire.is_empty() {
        return;
    }
    out.push_str("<p class=\"wire\">Wire facts expected:</p><ul class=\"wire\">");
    for f in &e.wire {
        let _ = write!(out, "<li>{}</li>", text(f));
    }
    out.push_str("</ul>\n");
}

fn shapes(out: &mut String, c: &CaseReport) {
    let Some(segs) = &c.segments else { return };
    let shapes = teardown_shapes(segs);
    if shapes.is_empty() {
        return;
    }
    let many = shapes.len() > 1;
    out.push_str("<p class=\"shape\">Teardown shape: ");
    let lines: Vec<String> = shapes.iter().map(|s| text(&shape_line(s, many))).collect();
    out.push_str(&lines.join("<br/>"));
    out.push_str("</p>\n");
}

/// The page's style: plain, readable on screen and on paper. No `<` or `&` in it: the page is
/// read as XML by the tests.
const CSS: &str = r#"
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0 auto; padding: 1em 2em; max-width: 1500px; color: #1b1b1b; background: #fff; }
h1 { font-size: 1.5em; margin: 0.2em 0 0.5em; }
h2 { font-size: 1.15em; margin: 0 0 0.4em; }
h3 { font-size: 1em; margin: 1em 0 0.3em; }
a { color: #0b57d0; text-decoration: none; }
a:hover { text-decoration: underline; }
code, .facts td, .columns td, .rows td, .shape, .index a { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
table { border-collapse: collapse; margin: 0.4em 0; }
th, td { border: 1px solid #d0d7de; padding: 2px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num { text-align: right; color: #57606a; }
tr.differs td, tr.differs th, span.differs { background: #ffebe9; color: #a40e26; font-weight: 600; }
tr.missing td { color: #a40e26; }
.verdict { display: inline-block; border-radius: 3px; padding: 0 6px; font-size: 12px; font-weight: 600; color: #fff; margin-right: 2px; }
.verdict.pass { background: #1a7f37; }
.verdict.fail { background: #cf222e; }
.verdict.timeout { background: #bc4c00; }
.verdict.skip { background: #6e7781; }
.verdict.absent, .absent { background: none; color: #6e7781; font-style: italic; }
.duration { color: #57606a; font-size: 12px; font-weight: normal; }
nav#summary { border: 1px solid #d0d7de; border-radius: 6px; padding: 0.6em 1em; margin: 1em 0; background: #fbfcfd; }
.index a { margin-right: 0.8em; white-space: nowrap; line-height: 1.8; }
ul.links { margin: 0.2em 0; padding-left: 1.4em; }
section.case { border: 1px solid #d0d7de; border-left: 6px solid #1a7f37; border-radius: 6px; padding: 0.7em 1em; margin: 1.2em 0; }
section.case.fail { border-left-color: #cf222e; }
section.case.timeout { border-left-color: #bc4c00; }
section.case.skip { border-left-color: #6e7781; }
section.case.differs { box-shadow: inset 0 0 0 1px #cf222e; }
section.case:target { outline: 3px solid #0b57d0; }
a.id { color: inherit; }
.doc { margin: 0.2em 0; max-width: 70em; }
.source, .expectation, .provenance, .wire, .shape { margin: 0.2em 0; color: #424a53; }
.provenance .from-source { color: #9a6700; font-weight: 600; }
ul.why li { color: #a40e26; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
ul.skipped li, ul.notes li { color: #57606a; }
ul.why, ul.skipped, ul.notes, ul.wire { margin: 0.2em 0; padding-left: 1.4em; }
.detail { display: flex; flex-wrap: wrap; gap: 0.5em 2em; align-items: flex-start; }
.detail > .info { flex: 0 1 auto; min-width: 22em; }
.ladders { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; margin-top: 0.6em; }
figure { margin: 0; border: 1px solid #e1e4e8; border-radius: 4px; padding: 4px; background: #fff; overflow-x: auto; max-width: 100%; }
figcaption { font-size: 12px; color: #57606a; margin: 0 0 2px 4px; }
svg.ladder { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 11px; display: block; }
svg.ladder text { fill: #1b1b1b; }
svg.ladder text.head { font-weight: 700; font-size: 12px; }
svg.ladder text.time { fill: #6e7781; }
svg.ladder text.state { fill: #8250df; font-weight: 600; }
svg.ladder line.timeline { stroke: #24292f; stroke-width: 2; }
svg.ladder .arrow line { stroke: #0b57d0; stroke-width: 1.3; }
svg.ladder .arrow polygon { fill: #0b57d0; }
svg.ladder .arrow text.label { fill: #0a3069; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
svg.ladder .across line { stroke: #8c959f; stroke-dasharray: 2 3; }
svg.ladder .across text { fill: #57606a; font-style: italic; paint-order: stroke; stroke: #fff; stroke-width: 4px; }
svg.ladder.expected .arrow line { stroke: #6e7781; stroke-dasharray: 5 3; }
svg.ladder.expected .arrow polygon { fill: #6e7781; }
svg.ladder .differs rect.mark { fill: #ffebe9; }
svg.ladder .differs line { stroke: #cf222e; stroke-width: 2; }
svg.ladder .differs polygon { fill: #cf222e; }
svg.ladder .differs text, svg.ladder .differs text.label { fill: #a40e26; font-weight: 700; }
footer { color: #6e7781; font-size: 12px; margin: 2em 0 1em; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  nav#summary, section.case { break-inside: avoid-page; }
  section.case { break-inside: auto; }
  figure { break-inside: avoid; overflow: visible; }
  a { color: inherit; }
}
"#;
