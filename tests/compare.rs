//! `sockconf compare` and the report it reads. The fixtures under tests/fixtures/ are reports
//! written by `sockconf run --format json` on a 6.18 kernel: `root.json` as root (netns),
//! `unprivileged.json` as uid 65534 (user+netns), and `one_observation_changed.json`, a copy of
//! `root.json` edited by hand: `close.unread_data_sends_rst`'s client read#1 says EOF instead of
//! ECONNRESET. `close_captured.json` is the close family alone, with its captured segments.
//! The bad files are each one way of not being a report.
mod common;

use common::sockconf;
use harness::report::{RunReport, Verdict};
use rstest::rstest;
use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn run(mut cmd: Command, args: &[&str]) -> (Option<i32>, String, String) {
    let out = cmd.args(args).output().expect("start sockconf");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn compare(cmd: Command, files: &[&str], flags: &[&str]) -> (Option<i32>, String, String) {
    let mut args = vec!["compare".to_string()];
    args.extend(files.iter().map(|f| fixture(f)));
    args.extend(flags.iter().map(|f| f.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(cmd, &args)
}

/// A file of this test's own, in the temporary directory.
fn scratch(name: &str, contents: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("sockconf-compare-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).expect("write a scratch file");
    path
}

fn read_fixture(name: &str) -> RunReport {
    RunReport::from_json(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

#[rstest]
fn root_and_unprivileged_differ_only_in_the_environment(sockconf: Command) {
    let (code, out, err) = compare(sockconf, &["root.json", "unprivileged.json"], &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    let release = read_fixture("root.json").environment.kernel_release;
    assert!(
        lines[0].contains(&format!("{release} (netns, root)")),
        "{out}"
    );
    assert!(
        lines[0].contains(&format!("{release} (user+netns, uid 65534)")),
        "{out}"
    );
    assert_eq!(lines[1], "environment", "{out}");
    assert!(lines[2].starts_with("  isolation ") && lines[2].ends_with("user+netns"));
    assert!(lines[3].starts_with("  privileges ") && lines[3].ends_with("uid 65534"));
    assert!(!out.contains("observations that differ"), "{out}");
    assert!(lines.last().unwrap().contains("no observation differs"));

    // What was not compared are the skips, and only those.
    let (_, out, _) = compare(
        common::sockconf(),
        &["root.json", "unprivileged.json"],
        &["--format", "json"],
    );
    let table: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(table["environment"].as_array().unwrap().len(), 2, "{out}");
    for case in table["not_compared"].as_array().unwrap() {
        for cell in case["rows"][0]["cells"].as_array().unwrap() {
            assert!(cell.as_str().unwrap().starts_with("skip: "), "{out}");
        }
    }
}

#[rstest]
fn a_case_skipped_in_one_report_is_listed_but_does_not_count(sockconf: Command) {
    let mut unprivileged = read_fixture("unprivileged.json");
    let case = &mut unprivileged.cases[0];
    case.conclude(Verdict::Skip, vec!["needs sysctl x=1".into()]);
    case.observations = Default::default();
    let edited = scratch(
        "skip.json",
        &serde_json::to_string_pretty(&unprivileged).unwrap(),
    );
    let (code, out, err) = run(
        sockconf,
        &["compare", &fixture("root.json"), edited.to_str().unwrap()],
    );
    std::fs::remove_file(&edited).unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("not compared (not run in every report)"),
        "{out}"
    );
    let verdict = out.lines().find(|l| l.contains("verdict")).expect(&out);
    assert!(verdict.contains("pass") && verdict.ends_with("skip: needs sysctl x=1"));
}

#[rstest]
fn one_edited_observation_is_exactly_one_row(sockconf: Command) {
    let (code, out, err) = compare(
        sockconf,
        &["root.json", "one_observation_changed.json"],
        &[],
    );
    assert_eq!(code, Some(1), "{out}{err}");
    let rows: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("observations"))
        .collect();
    assert_eq!(rows.len(), 4, "{out}");
    assert_eq!(rows[1].trim(), "close.unread_data_sends_rst@ipv4");
    let fact: Vec<&str> = rows[2].split_whitespace().collect();
    assert_eq!(fact, ["client", "read#1", "ECONNRESET", "EOF"], "{out}");
    assert!(rows[3].contains("1 case differs"), "{out}");
}

/// issue 11: compare sees the wire. The close family's report, with the client's FIN in
/// close.fin_then_eof replaced by a RST (as a kernel that aborts where another closes would
/// send): that case's teardown shape is the one row that differs.
#[rstest]
fn a_fin_replaced_by_a_rst_is_a_teardown_shape_row(sockconf: Command) {
    let mut edited = read_fixture("close_captured.json");
    let case = edited
        .cases
        .iter_mut()
        .find(|c| c.id == "close.fin_then_eof")
        .unwrap();
    let fin = case
        .segments
        .as_mut()
        .expect("the fixture has its capture")
        .iter_mut()
        .find(|s| s.flags.to_string() == "FIN|ACK")
        .expect("a FIN in close.fin_then_eof");
    fin.flags = "RST|ACK".to_string().try_into().unwrap();
    let file = scratch(
        "fin_replaced_by_rst.json",
        &serde_json::to_string_pretty(&edited).unwrap(),
    );
    let (code, out, err) = run(
        sockconf,
        &[
            "compare",
            &fixture("close_captured.json"),
            file.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    std::fs::remove_file(&file).unwrap();
    assert_eq!(code, Some(1), "{out}{err}");
    let table: serde_json::Value = serde_json::from_str(&out).unwrap();
    let differences = table["differences"].as_array().unwrap();
    assert_eq!(differences.len(), 1, "{out}");
    assert_eq!(differences[0]["id"], "close.fin_then_eof@ipv4");
    let rows = differences[0]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0]["fact"], "teardown shape");
    let cells: Vec<&str> = rows[0]["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(cells[0].starts_with("client FIN|ACK"), "{out}");
    assert!(cells[1].starts_with("client RST|ACK"), "{out}");
}

#[rstest]
fn json_and_markdown_give_the_same_row(sockconf: Command) {
    let files = ["root.json", "one_observation_changed.json"];
    let (code, out, _) = compare(sockconf, &files, &["--format", "json"]);
    assert_eq!(code, Some(1));
    let table: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(table["differs"], true);
    assert_eq!(table["differences"].as_array().unwrap().len(), 1);
    let row = &table["differences"][0]["rows"][0];
    assert_eq!(row["fact"], "client read#1");
    assert_eq!(row["cells"], serde_json::json!(["ECONNRESET", "EOF"]));

    let (code, out, _) = compare(common::sockconf(), &files, &["--format", "markdown"]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("| `close.unread_data_sends_rst@ipv4`: client read#1 | ECONNRESET | EOF |"),
        "{out}"
    );
}

#[rstest]
fn strict_counts_every_millisecond(sockconf: Command) {
    // The two runs took different times for most cases, and their timers fired a few ms
    // apart; only --strict says so, and it says nothing else.
    let (code, out, _) = compare(
        sockconf,
        &["root.json", "unprivileged.json"],
        &["--strict", "--format", "json"],
    );
    assert_eq!(code, Some(1), "{out}");
    let table: serde_json::Value = serde_json::from_str(&out).unwrap();
    for case in table["differences"].as_array().unwrap() {
        for row in case["rows"].as_array().unwrap() {
            // A duration, or a timer fact (its cells `1013ms`, `1021ms`).
            let timer = row["cells"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c.as_str().is_some_and(|c| c.ends_with("ms")));
            assert!(row["fact"] == "duration" || timer, "{row}");
        }
    }
}

#[rstest]
#[case::empty("empty.json", "empty file, not a sockconf report")]
#[case::truncated("truncated.json", "truncated JSON: the document ends early")]
#[case::not_json("text_output.json", "not JSON:")]
#[case::not_a_report("not_a_report.json", "not a sockconf report")]
#[case::wrong_schema(
    "wrong_schema_version.json",
    "schema_version 1, but this sockconf reads schema_version 4"
)]
#[case::missing("no_such_file.json", "cannot read:")]
fn a_bad_file_is_one_clear_line_and_exit_2(
    sockconf: Command,
    #[case] bad: &str,
    #[case] says: &str,
) {
    let (code, out, err) = compare(sockconf, &["root.json", bad], &[]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(out.is_empty(), "nothing half-printed: {out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("sockconf: {}: ", fixture(bad))),
        "{err}"
    );
    assert!(err.contains(says), "{err}");
}

/// A version 2 report does not say whether its expectations were observed or read in the
/// source; compare refuses it and says what to do, rather than read it as observed.
#[rstest]
fn a_version_2_report_is_refused_with_what_to_do(sockconf: Command) {
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("root.json")).unwrap()).unwrap();
    doc["schema_version"] = 2.into();
    let file = scratch("v2.json", &doc.to_string());
    let (code, out, err) = run(
        sockconf,
        &["compare", &fixture("root.json"), file.to_str().unwrap()],
    );
    std::fs::remove_file(&file).unwrap();
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("schema_version 2, but this sockconf reads schema_version 4")
            && err.contains("run the suite again with this sockconf"),
        "{err}"
    );
}

#[rstest]
fn a_report_missing_a_field_is_malformed(sockconf: Command) {
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("root.json")).unwrap()).unwrap();
    doc["cases"][0].as_object_mut().unwrap().remove("verdict");
    let file = scratch("malformed.json", &doc.to_string());
    let (code, out, err) = run(
        sockconf,
        &["compare", &fixture("root.json"), file.to_str().unwrap()],
    );
    std::fs::remove_file(&file).unwrap();
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(out.is_empty());
    assert!(err.contains("malformed sockconf report"), "{err}");
    assert!(err.contains("missing field `verdict`"), "{err}");
}

#[rstest]
fn every_bad_file_gets_its_line(sockconf: Command) {
    let (code, out, err) = compare(sockconf, &["empty.json", "truncated.json"], &[]);
    assert_eq!(code, Some(2));
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 2, "{err}");
}

#[rstest]
fn one_report_is_not_a_comparison(sockconf: Command) {
    let (code, out, _) = compare(sockconf, &["root.json"], &[]);
    assert_eq!(code, Some(2));
    assert!(out.is_empty());
}

/// The fixtures are in the current layout exactly: reading and writing one gives its text back.
#[rstest]
#[case::root("root.json")]
#[case::unprivileged("unprivileged.json")]
#[case::close_captured("close_captured.json")]
fn fixtures_round_trip(#[case] name: &str) {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    let written = serde_json::to_string_pretty(&read_fixture(name)).unwrap();
    assert_eq!(written, text.trim_end());
}

/// A fresh report reads back into the same document, byte for byte.
#[rstest]
fn a_fresh_report_round_trips(sockconf: Command) {
    let (code, out, err) = run(sockconf, &["run", "close", "--format", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let report = RunReport::from_json(&out).expect("a report");
    assert_eq!(
        serde_json::to_string_pretty(&report).unwrap(),
        out.trim_end()
    );
    let ids: Vec<&str> = report.cases.iter().map(|c| c.id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "cases in a stable order");
}

#[rstest]
fn junit_has_one_testcase_per_id(sockconf: Command) {
    let file = scratch("junit.xml", "");
    let (code, _, err) = run(
        sockconf,
        &[
            "run",
            "close.fin_then_eof",
            "close.kill_sends_fin",
            "--junit",
            file.to_str().unwrap(),
        ],
    );
    let xml = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    assert_eq!(code, Some(0), "{err}");
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"));
    assert!(
        xml.contains(r#"tests="4" failures="0" errors="0" skipped="0""#),
        "{xml}"
    );
    for instance in [
        "close.fin_then_eof@ipv4",
        "close.fin_then_eof@ipv6",
        "close.kill_sends_fin@ipv4",
        "close.kill_sends_fin@ipv6",
    ] {
        let testcase = format!(r#"<testcase classname="close" name="{instance}""#);
        assert!(xml.contains(&testcase), "{xml}");
    }
    assert!(xml.contains("client exit = killed by SIGKILL"), "{xml}");
}

#[rstest]
fn junit_to_an_unwritable_place_fails_before_running(sockconf: Command) {
    let (code, out, err) = run(sockconf, &["run", "--junit", "/nonexistent/dir/junit.xml"]);
    assert_eq!(code, Some(2));
    assert!(out.is_empty(), "{out}");
    assert!(
        err.starts_with("sockconf: --junit /nonexistent/dir/junit.xml: "),
        "{err}"
    );
}

/// A field added later does not stop this version reading a report.
#[rstest]
fn unknown_keys_are_read_past(sockconf: Command) {
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("root.json")).unwrap()).unwrap();
    doc["cases"][0]["added_later"] = serde_json::json!([{ "flags": "FIN|ACK" }]);
    let file = scratch("newer.json", &doc.to_string());
    let (code, out, err) = run(
        sockconf,
        &["compare", &fixture("root.json"), file.to_str().unwrap()],
    );
    std::fs::remove_file(&file).unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
}
