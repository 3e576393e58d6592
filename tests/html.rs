//! The HTML report (`sockconf run --html`, `sockconf report --html`), read back with an XML
//! parser: the page is well-formed, has one section per case with its id, one arrow per
//! captured segment, failures first with the expected ladder beside, and, for two reports, the
//! ladders of a case that differs side by side with the difference marked.
mod common;

use common::sockconf;
use harness::report::{RunReport, Verdict};
use roxmltree::{Document, Node, ParsingOptions};
use rstest::rstest;
use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn read_fixture(name: &str) -> RunReport {
    RunReport::from_json(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

/// A file of this test's own in the temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        Scratch(std::env::temp_dir().join(format!("sockconf-html-{}-{name}", std::process::id())))
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn write_report(name: &str, report: &RunReport) -> Scratch {
    let file = Scratch::new(name);
    std::fs::write(&file.0, serde_json::to_string_pretty(report).unwrap()).unwrap();
    file
}

/// `sockconf ARGS... --html PAGE`, and the page's text.
fn page(mut sockconf: Command, args: &[&str]) -> String {
    let out = Scratch::new("page.html");
    let status = sockconf
        .args(args)
        .args(["--html", out.path()])
        .output()
        .expect("start sockconf");
    assert!(
        status.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    std::fs::read_to_string(&out.0).expect("the page was written")
}

fn parse(html: &str) -> Document<'_> {
    let options = ParsingOptions {
        allow_dtd: true,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(html, options).unwrap_or_else(|e| panic!("not well-formed: {e}"))
}

fn has_class(n: &Node, class: &str) -> bool {
    n.attribute("class")
        .is_some_and(|c| c.split_whitespace().any(|t| t == class))
}

fn sections<'a>(doc: &'a Document) -> Vec<Node<'a, 'a>> {
    doc.descendants()
        .filter(|n| n.has_tag_name("section") && has_class(n, "case"))
        .collect()
}

/// The `svg.ladder.{kind}` elements of a section.
fn ladders<'a>(section: Node<'a, 'a>, kind: &str) -> Vec<Node<'a, 'a>> {
    section
        .descendants()
        .filter(|n| n.has_tag_name("svg") && has_class(n, "ladder") && has_class(n, kind))
        .collect()
}

fn count(node: Node, tag: &str, class: &str) -> usize {
    node.descendants()
        .filter(|n| n.has_tag_name(tag) && has_class(n, class))
        .count()
}

/// What every page must be: well-formed, self-contained, a section per case, every case
/// linked from the summary, one arrow per captured segment in each observed ladder.
fn check_structure(html: &str, report: &RunReport) {
    assert!(!html.contains("<script"), "no script");
    for fetch in ["src=", "@import", "url(", "<link"] {
        assert!(!html.contains(fetch), "nothing fetched: found {fetch}");
    }
    let doc = parse(html);
    let sections = sections(&doc);
    assert_eq!(sections.len(), report.cases.len(), "one section per case");
    let summary = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("summary"))
        .expect("a summary");
    for case in &report.cases {
        let instance = case.instance();
        let section = sections
            .iter()
            .find(|s| s.attribute("id") == Some(instance.as_str()))
            .unwrap_or_else(|| panic!("no section with id {instance}"));
        // The heading names the case and, set apart, its kind.
        let heading = section
            .descendants()
            .find(|n| n.has_tag_name("h2"))
            .expect("a heading");
        let heading_text: String = heading
            .descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .collect();
        assert!(heading_text.starts_with(&instance), "{heading_text}");
        assert!(
            heading
                .descendants()
                .any(|n| has_class(&n, "kind")
                    && n.text() == Some(&format!("@{}", case.kind.name()))),
            "{instance}: the kind is set apart in the heading"
        );
        let href = format!("#{instance}");
        assert!(
            summary
                .descendants()
                .any(|a| a.has_tag_name("a") && a.attribute("href") == Some(href.as_str())),
            "the summary links to {}",
            instance
        );
        let observed = ladders(*section, "observed");
        match &case.segments {
            Some(segments) => {
                assert_eq!(observed.len(), 1, "{}: one observed ladder", case.id);
                assert_eq!(
                    count(observed[0], "g", "arrow"),
                    segments.len(),
                    "{}: one arrow per captured segment",
                    case.id
                );
            }
            None => assert!(observed.is_empty(), "{}", case.id),
        }
    }
}

#[rstest]
fn a_saved_report_is_a_well_formed_page_with_a_ladder_per_case(sockconf: Command) {
    let html = page(sockconf, &["report", &fixture("close_captured.json")]);
    let report = read_fixture("close_captured.json");
    check_structure(&html, &report);
    let doc = parse(&html);
    // Both kinds ran, and the summary counts each kind's instances in a row of its own.
    for kind in ["ipv4", "ipv6"] {
        let n = report
            .cases
            .iter()
            .filter(|c| c.kind.name() == kind)
            .count();
        assert!(n > 0, "the fixture has {kind} instances");
        let row = doc
            .descendants()
            .find(|n| {
                n.has_tag_name("tr")
                    && has_class(n, "kind")
                    && n.descendants()
                        .any(|t| t.text() == Some(&format!("every case @{kind}")))
            })
            .unwrap_or_else(|| panic!("a summary row for {kind}"));
        let cells: String = row
            .descendants()
            .filter(|t| t.is_text())
            .filter_map(|t| t.text())
            .collect();
        assert!(cells.contains(&format!("{n} pass")), "{cells}");
    }
    let rst = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("close.unread_data_sends_rst@ipv4"))
        .unwrap();
    let text: String = rst
        .descendants()
        .filter(|n| n.is_text())
        .map(|n| n.text().unwrap())
        .collect();
    assert!(text.contains("RST|ACK seq=1 ack=6 len=0"), "the label");
    assert!(text.contains("read#1 = ECONNRESET"), "the client's call");
    assert!(text.contains("barrier 'sent'"), "the barrier");
    assert!(text.contains("CLOSED"), "the state the RST implies");
    assert!(text.contains("RFC 2525"), "the source");
    assert!(
        text.contains("Expectation observed on linux"),
        "the expectation's provenance"
    );
}

/// A failing case comes first, with its expected ladder beside the observed one, the fact that
/// differs marked; markup in the report's text is escaped, not interpreted.
#[rstest]
fn a_failure_comes_first_with_its_expected_ladder(sockconf: Command) {
    let mut report = read_fixture("close_captured.json");
    let case = report
        .cases
        .iter_mut()
        .find(|c| c.id == "close.unread_data_sends_rst")
        .unwrap();
    case.conclude(
        Verdict::Fail,
        vec![r#"client #1 read#1: expected ECONNRESET, observed <EOF> & "more""#.into()],
    );
    report.summary = harness::report::Summary::of(&report.cases);
    let file = write_report("failing.json", &report);
    let html = page(sockconf, &["report", file.path()]);
    check_structure(&html, &report);
    let doc = parse(&html);
    let first = sections(&doc)[0];
    assert_eq!(
        first.attribute("id"),
        Some("close.unread_data_sends_rst@ipv4")
    );
    assert!(has_class(&first, "fail"));
    assert_eq!(ladders(first, "expected").len(), 1, "the expected ladder");
    let expected_arrows = count(ladders(first, "expected")[0], "g", "arrow");
    assert!(expected_arrows >= 4, "handshake and RST: {expected_arrows}");
    let marked: Vec<String> = first
        .descendants()
        .filter(|n| n.has_tag_name("tr") && has_class(n, "differs"))
        .map(|tr| tr.descendants().filter_map(|n| n.text()).collect())
        .collect();
    assert_eq!(marked.len(), 1, "{marked:?}");
    assert!(marked[0].contains("read#1 = ECONNRESET"), "{marked:?}");
    assert!(
        first.descendants().any(|n| n.text()
            == Some(r#"client #1 read#1: expected ECONNRESET, observed <EOF> & "more""#)),
        "the failure line, escaped and read back"
    );
}

/// Two reports, one with a FIN replaced by a RST: that case shows both ladders, its teardown
/// marked in each; a case that does not differ shows one.
#[rstest]
fn two_reports_show_a_differing_teardown_side_by_side(sockconf: Command) {
    let mut edited = read_fixture("close_captured.json");
    edited.environment.kernel_release = "6.1.0-edited".into();
    let case = edited
        .cases
        .iter_mut()
        .find(|c| c.id == "close.fin_then_eof")
        .unwrap();
    let segments = case.segments.as_mut().unwrap();
    let fin = segments
        .iter()
        .position(|s| s.flags.to_string() == "FIN|ACK")
        .unwrap();
    segments[fin].flags = "RST|ACK".to_string().try_into().unwrap();
    let teardown_len = segments.len() - fin;
    let file = write_report("edited.json", &edited);
    let html = page(
        sockconf,
        &["report", &fixture("close_captured.json"), file.path()],
    );
    let doc = parse(&html);
    let all = sections(&doc);
    let differing = all
        .iter()
        .find(|s| s.attribute("id") == Some("close.fin_then_eof@ipv4"))
        .unwrap();
    assert!(has_class(differing, "differs"));
    assert_eq!(
        all[0].attribute("id"),
        Some("close.fin_then_eof@ipv4"),
        "the difference comes first"
    );
    let observed = ladders(*differing, "observed");
    assert_eq!(observed.len(), 2, "side by side");
    for ladder in &observed {
        let marked = ladder
            .descendants()
            .filter(|n| n.has_tag_name("g") && has_class(n, "arrow") && has_class(n, "differs"))
            .count();
        assert_eq!(marked, teardown_len, "the teardown's arrows are marked");
    }
    let same = all
        .iter()
        .find(|s| s.attribute("id") == Some("close.exit_sends_fin@ipv4"))
        .unwrap();
    assert_eq!(ladders(*same, "observed").len(), 1);
    assert!(html.contains("teardown shape"));
}

/// `sockconf run --html` next to `--format json`: the page of the very run the JSON describes.
#[rstest]
fn a_run_writes_its_page_too(mut sockconf: Command) {
    let out = Scratch::new("run.html");
    let run = sockconf
        .args(["run", "close", "--format", "json", "--html", out.path()])
        .output()
        .expect("start sockconf");
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = RunReport::from_json(&String::from_utf8_lossy(&run.stdout)).unwrap();
    assert!(
        report.cases.iter().all(|c| c.segments.is_some()),
        "captured"
    );
    check_structure(&std::fs::read_to_string(&out.0).unwrap(), &report);
}

#[rstest]
fn an_unwritable_page_fails_before_running(mut sockconf: Command) {
    let out = sockconf
        .args(["run", "--html", "/nonexistent/dir/r.html"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}
