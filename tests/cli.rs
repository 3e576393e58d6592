//! The CLI's surface: list, run, explain, and its exit codes. (Every catalogued case is a cargo
//! test by construction: tests/cases.rs lists them from the catalogue.)
mod common;

use common::sockconf;
use harness::report::{RunReport, SCHEMA_VERSION};
use rstest::rstest;
use std::process::Command;

fn stdout(mut cmd: Command, args: &[&str]) -> (Option<i32>, String, String) {
    let out = cmd.args(args).output().expect("start sockconf");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ids(cmd: Command) -> Vec<String> {
    stdout(cmd, &["list"])
        .1
        .lines()
        .map(str::to_string)
        .collect()
}

#[rstest]
fn list_prints_one_family_dot_behaviour_at_kind_instance_a_line(sockconf: Command) {
    let ids = ids(sockconf);
    assert!(ids.len() >= 8);
    for instance in &ids {
        let (id, kind) = instance.split_once('@').expect("id@kind");
        assert!(harness::Kind::from_name(kind).is_some(), "{instance}");
        let (family, behaviour) = id.split_once('.').expect("family.behaviour");
        assert!(
            !family.is_empty() && !behaviour.is_empty() && !behaviour.contains('.'),
            "{id}"
        );
    }
}

#[rstest]
#[case::unknown_id(&["run", "close.fin_than_eof"], "nearest: close.fin_then_eof")]
#[case::unknown_explain(&["explain", "nope.nothing"], "unknown case 'nope.nothing'")]
#[case::bad_flag(&["run", "--format", "xml"], "invalid value 'xml'")]
fn bad_input_is_one_clear_line_and_exit_2(
    sockconf: Command,
    #[case] args: &[&str],
    #[case] says: &str,
) {
    let (code, out, err) = stdout(sockconf, args);
    assert_eq!(code, Some(2), "stdout: {out}\nstderr: {err}");
    assert!(out.is_empty(), "nothing on stdout: {out}");
    assert!(err.contains(says), "{err}");
}

#[rstest]
fn run_json_holds_environment_and_cases(sockconf: Command) {
    let (code, out, err) = stdout(
        sockconf,
        &["run", "close.fin_then_eof@ipv6", "--format", "json"],
    );
    assert_eq!(code, Some(0), "{err}");
    let report: RunReport = serde_json::from_str(&out).expect("a run report");
    assert_eq!(report.schema_version, SCHEMA_VERSION);
    assert!(!report.environment.kernel_release.is_empty());
    assert_eq!(report.cases.len(), 1);
    assert_eq!(report.cases[0].id, "close.fin_then_eof");
    assert_eq!(report.cases[0].kind, harness::Kind::Ipv6);
    assert!(report.cases[0].expectation.is_some());
}

#[rstest]
fn explain_prints_doc_source_and_expectations(sockconf: Command) {
    let (code, out, _) = stdout(sockconf, &["explain", "close.unread_data_sends_rst"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("RFC 2525"), "{out}");
    let head: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("Expected "))
        .expect(&out)
        .split_whitespace()
        .collect();
    assert_eq!(head, ["Expected", "linux", "macos", "freebsd"], "{out}");
    assert!(
        out.contains("linux (any kernel): observed on linux"),
        "{out}"
    );
}

/// Every case states, for every OS, an expectation or why it cannot apply; the JSON says so
/// for each, with the expectation's source and provenance.
#[rstest]
fn explain_json_has_every_case_and_os(sockconf: Command) {
    let (code, out, err) = stdout(sockconf, &["explain", "--format", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(doc["explain_schema_version"], 1);
    let cases = doc["cases"].as_array().unwrap();
    let mut listed: Vec<String> = ids(common::sockconf())
        .iter()
        .map(|i| i.split('@').next().unwrap().to_string())
        .collect();
    listed.dedup();
    assert_eq!(cases.len(), listed.len());
    for case in cases {
        let oses: Vec<&str> = case["oses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["os"].as_str().unwrap())
            .collect();
        assert_eq!(oses, ["linux", "macos", "freebsd"], "{case}");
        for entry in case["oses"].as_array().unwrap() {
            for e in entry["expectations"].as_array().unwrap() {
                assert!(e["source"].is_string() && e["provenance"]["kind"].is_string());
            }
        }
    }
    let (_, one, _) = stdout(
        common::sockconf(),
        &["explain", "--format", "json", "sigpipe.so_nosigpipe"],
    );
    let one: serde_json::Value = serde_json::from_str(&one).unwrap();
    let linux = &one["cases"][0]["oses"][0];
    assert_eq!(linux["status"], "cannot_apply");
    assert!(linux["cannot_apply"]
        .as_str()
        .unwrap()
        .contains("no SO_NOSIGPIPE on Linux"));
}

/// The matrix refuses to start, in one line and exit 2, when it cannot boot anything: no
/// static binary for the VM's init, or no qemu. (Booting kernels is `make matrix`'s and CI's.)
/// The kernel is given as an image's path (any file), so that no name is looked up.
#[rstest]
#[case::dynamic_binary(&["matrix", "--kernel", env!("CARGO_BIN_EXE_sockconf")], "dynamically linked")]
#[case::no_qemu(&["matrix", "--kernel", env!("CARGO_BIN_EXE_sockconf"), "--guest-binary", env!("CARGO_BIN_EXE_sockconf")], "cannot start qemu-system-x86_64")]
fn matrix_without_what_it_needs_is_one_clear_line(
    mut sockconf: Command,
    #[case] args: &[&str],
    #[case] says: &str,
) {
    sockconf.env("PATH", "/nonexistent");
    let (code, out, err) = stdout(sockconf, args);
    assert_eq!(code, Some(2), "stdout: {out}\nstderr: {err}");
    assert!(out.is_empty(), "nothing on stdout: {out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(says), "{err}");
}

/// A kernel Debian does not serve (4.19) is one line naming what it does serve, and exit 2,
/// before anything else is needed. Read from apt lists as `sockconf matrix` keeps them under
/// `--apt` (fixtures written here, updated just now), so no network is needed.
#[rstest]
fn matrix_names_what_exists_for_a_kernel_debian_does_not_serve(sockconf: Command) {
    let dir = std::env::temp_dir().join(format!("sockconf-cli-apt-{}", std::process::id()));
    let lists = dir.join("apt/lists");
    std::fs::create_dir_all(&lists).unwrap();
    for (suite, alias, packages) in [
        (
            "bullseye",
            "oldoldstable",
            "Package: linux-image-5.10.0-32-amd64-unsigned\nVersion: 5.10.223-1\n",
        ),
        (
            "sid",
            "unstable",
            "Package: linux-binary-7.2.13+deb14-amd64\nVersion: 7.2.13-1\n",
        ),
    ] {
        let prefix = lists.join(format!("mirror.example_debian_dists_{suite}"));
        std::fs::write(
            format!("{}_InRelease", prefix.display()),
            format!("Suite: {alias}\nCodename: {suite}\n"),
        )
        .unwrap();
        std::fs::write(
            format!("{}_main_binary-amd64_Packages", prefix.display()),
            packages,
        )
        .unwrap();
    }
    std::fs::write(dir.join("apt/updated"), "").unwrap();
    let (code, out, err) = stdout(
        sockconf,
        &[
            "matrix",
            "--kernel",
            "4.19",
            "--apt",
            dir.join("apt").to_str().unwrap(),
            "--cache",
            dir.join("kernels").to_str().unwrap(),
            "--out",
            dir.join("out").to_str().unwrap(),
        ],
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, Some(2), "stdout: {out}\nstderr: {err}");
    assert!(out.is_empty(), "nothing on stdout: {out}");
    assert_eq!(
        err,
        "sockconf matrix: no Debian kernel 4.19; Debian offers 5.10 (bullseye), 7.2 (sid); \
         suites: bullseye (oldoldstable), sid (unstable); or a full version such as \
         7.2.13+deb14, or an image's path\n"
    );
}

/// `guest-init` mounts filesystems and powers the machine off: anywhere but PID 1 of the
/// matrix's VM it refuses.
#[rstest]
fn guest_init_refuses_outside_the_vm(sockconf: Command) {
    let (code, _, err) = stdout(sockconf, &["guest-init"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("PID 1"), "{err}");
}

#[rstest]
fn run_verbose_draws_the_ladder(sockconf: Command) {
    let (code, out, _) = stdout(sockconf, &["run", "-v", "close.fin_then_eof"]);
    assert_eq!(code, Some(0), "{out}");
    for want in [
        "-- SYN seq=0 ack=0 len=0",
        "<---------------- SYN|ACK seq=0 ack=1 len=0 --|",
        "FIN_WAIT1 |-- FIN|ACK seq=6 ack=1 len=0",
        "| CLOSE_WAIT",
        "read#2 = EOF",
        "barrier 'listening'",
    ] {
        assert!(out.contains(want), "no {want:?} in\n{out}");
    }
}

/// The pcap holds the frames the report's segments were parsed from.
#[rstest]
fn pcap_holds_the_reported_segments(sockconf: Command) {
    use harness::observe::capture::Frame;
    use harness::observe::clock::Origin;
    use harness::observe::segment::parse;
    let dir = std::env::temp_dir().join(format!("sockconf-pcap-{}", std::process::id()));
    let id = "close.unread_data_sends_rst@ipv6";
    let (code, json, _) = stdout(
        sockconf,
        &[
            "run",
            "--pcap",
            dir.to_str().unwrap(),
            "--format",
            "json",
            id,
        ],
    );
    assert_eq!(code, Some(0), "{json}");
    let report: RunReport = serde_json::from_str(&json).unwrap();
    let reported = report.cases[0].segments.clone().expect("captured");
    let file = std::fs::File::open(dir.join(format!("{id}.pcap"))).expect("pcap written");
    let mut reader = pcap_file::pcap::PcapReader::new(file).expect("a pcap file");
    let mut frames = vec![];
    while let Some(packet) = reader.next_packet() {
        let packet = packet.expect("a whole packet");
        frames.push(Frame {
            epoch_ns: packet.timestamp.as_nanos() as u64,
            data: packet.data.into_owned(),
            orig_len: packet.orig_len,
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
    let from_pcap = parse(&frames, Origin { epoch_ns: 0 });
    let shape = |s: &harness::observe::segment::Segment| (s.from, s.flags, s.seq, s.ack, s.len);
    assert_eq!(
        from_pcap.iter().map(shape).collect::<Vec<_>>(),
        reported.iter().map(shape).collect::<Vec<_>>()
    );
}

#[rstest]
fn explain_draws_the_expected_ladder(sockconf: Command) {
    let (code, out, _) = stdout(sockconf, &["explain", "close.unread_data_sends_rst"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("server sends RST and no FIN"), "{out}");
    assert!(
        out.contains("<-------------------------------------- RST --|"),
        "{out}"
    );
    assert!(out.contains("no FIN from the server"), "{out}");
}

/// `confirm` sorts a report's cases by what they say about their expectations: on Linux every
/// judged case was observed before and passed again; the skip is listed with its reason.
#[rstest]
fn confirm_summarises_a_report(sockconf: Command) {
    let report = format!("{}/tests/fixtures/root.json", env!("CARGO_MANIFEST_DIR"));
    let (code, out, err) = stdout(sockconf, &["confirm", "--from", &report]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("### sockconf confirm: linux "), "{out}");
    assert!(
        out.contains("| refuted: read in the source, failed here | 0 |"),
        "{out}"
    );
    assert!(
        out.contains("| observed before, passed again | 46 |"),
        "{out}"
    );
    assert!(
        out.contains("- `sigpipe.so_nosigpipe@ipv4`\n  - no SO_NOSIGPIPE on Linux"),
        "{out}"
    );
}
