//! `sockconf run --junit FILE`: the run as JUnit XML for CI dashboards. One testcase per case
//! id; a skip is `<skipped message=reason>`, a failure or a timeout is `<failure>` with the
//! difference; each side's observations go to `<system-out>`. The expectation a case was judged
//! against is named with its provenance (observed on which releases, or from source) and its
//! source, as the testcase's `<properties>` and as the first line of `<system-out>`, so that a
//! dashboard tells a failure against an observed expectation from one against a reading of the
//! source.

use crate::xml::{attr, text};
use harness::report::{CaseReport, RunReport, Verdict};
use std::fmt::Write;

pub fn junit(report: &RunReport) -> String {
    let env = &report.environment;
    let s = &report.summary;
    let tests = report.cases.len();
    let failures = s.failed + s.timeout;
    let seconds = report.cases.iter().map(|c| c.duration_ms).sum::<u64>() as f64 / 1000.0;
    let counts = format!(
        r#"tests="{tests}" failures="{failures}" errors="0" skipped="{}" time="{seconds:.3}""#,
        s.skipped
    );
    let suite = format!(
        "sockconf on {} {} ({})",
        env.os.name(),
        env.kernel_release,
        env.arch
    );
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, r#"<testsuites name="sockconf" {counts}>"#);
    let _ = writeln!(out, r#"  <testsuite name="{}" {counts}>"#, attr(&suite));
    out.push_str("    <properties>\n");
    let mut properties = vec![
        ("os", env.os.name().to_string()),
        ("kernel_release", env.kernel_release.clone()),
        ("arch", env.arch.clone()),
        ("sockconf_version", env.sockconf_version.clone()),
        ("isolation", env.isolation.join(", ")),
        ("privileges", env.privileges.clone()),
        ("schema_version", report.schema_version.to_string()),
    ];
    properties.extend(
        env.sysctls
            .iter()
            .map(|(name, value)| (name.as_str(), value.clone())),
    );
    for (name, value) in properties {
        let _ = writeln!(
            out,
            r#"      <property name="{}" value="{}"/>"#,
            attr(name),
            attr(&value)
        );
    }
    out.push_str("    </properties>\n");
    for case in &report.cases {
        testcase(&mut out, case);
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn testcase(out: &mut String, case: &CaseReport) {
    let family = case.id.split('.').next().unwrap_or(&case.id);
    let _ = writeln!(
        out,
        r#"    <testcase classname="{}" name="{}" time="{:.3}">"#,
        attr(family),
        attr(&case.instance()),
        case.duration_ms as f64 / 1000.0
    );
    if let Some(e) = &case.expectation {
        out.push_str("      <properties>\n");
        for (name, value) in [
            ("expectation", format!("{}, {}", e.os.name(), e.kernel)),
            ("provenance", e.provenance.describe()),
            ("source", e.source.clone()),
        ] {
            let _ = writeln!(
                out,
                r#"        <property name="{name}" value="{}"/>"#,
                attr(&value)
            );
        }
        out.push_str("      </properties>\n");
    }
    let why = case.why();
    let first = why.first().copied().unwrap_or("");
    match case.verdict {
        Verdict::Pass => {}
        Verdict::Skip => {
            let _ = writeln!(out, r#"      <skipped message="{}"/>"#, attr(first));
        }
        Verdict::Fail | Verdict::Timeout => {
            let _ = writeln!(
                out,
                r#"      <failure type="{}" message="{}">{}</failure>"#,
                case.verdict.name(),
                attr(first),
                text(&why.join("\n"))
            );
        }
    }
    let mut observed = String::new();
    if let Some(e) = &case.expectation {
        let _ = writeln!(
            observed,
            "expected on {}, {}: {}; source: {}",
            e.os.name(),
            e.kernel,
            e.provenance.describe(),
            e.source
        );
    }
    for (side, facts) in [
        ("server", &case.observations.server),
        ("client", &case.observations.client),
    ] {
        for fact in facts {
            let _ = writeln!(observed, "{side} {} = {}", fact.name, fact.value);
        }
    }
    if !observed.is_empty() {
        let _ = writeln!(out, "      <system-out>{}</system-out>", text(&observed));
    }
    out.push_str("    </testcase>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::report::{Environment, ExpectationReport, ProvenanceReport};
    use harness::{Fact, Os, Value};

    fn report() -> RunReport {
        let mut pass = CaseReport::new("close.b_passes", harness::Kind::Ipv4);
        pass.conclude(Verdict::Pass, vec![]);
        pass.expectation = Some(ExpectationReport {
            os: Os::Macos,
            kernel: "any kernel".into(),
            source: "xnu-11215 bsd/netinet/tcp_usrreq.c tcp_usr_disconnect()".into(),
            provenance: ProvenanceReport::FromSource,
            server: vec![],
            client: vec![],
            wire: vec![],
            kinds: vec![],
        });
        pass.observations
            .client
            .push(Fact::new("read", Value::Errno("ECONNRESET".into())));
        let mut skip = CaseReport::new("close.a_skips", harness::Kind::Ipv4);
        skip.conclude(Verdict::Skip, vec![r#"needs "x" & <y>"#.into()]);
        let mut fail = CaseReport::new("close.c_fails", harness::Kind::Ipv4);
        fail.conclude(
            Verdict::Fail,
            vec![
                "client #0 read: expected ECONNRESET, observed EOF".into(),
                "bad\u{1}byte".into(),
            ],
        );
        RunReport::new(
            Environment::here(vec!["netns".into()]),
            vec![pass, skip, fail],
        )
    }

    #[test]
    fn one_testcase_per_id_with_skips_and_failures() {
        let xml = junit(&report());
        assert_eq!(xml.matches("<testcase ").count(), 3);
        assert!(
            xml.contains(r#"tests="3" failures="1" errors="0" skipped="1""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<skipped message="needs &quot;x&quot; &amp; &lt;y&gt;"/>"#),
            "{xml}"
        );
        assert!(
            xml.contains(
                r#"<failure type="fail" message="client #0 read: expected ECONNRESET, observed EOF">client #0 read: expected ECONNRESET, observed EOF
bad�byte</failure>"#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<system-out>expected on macos, any kernel: from source (not yet run); source: \
                 xnu-11215 bsd/netinet/tcp_usrreq.c tcp_usr_disconnect()\n\
                 client read = ECONNRESET\n</system-out>"
            ),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<property name="provenance" value="from source (not yet run)"/>"#),
            "{xml}"
        );
        assert_eq!(
            xml.matches("<properties>").count(),
            2,
            "suite and the one judged case"
        );
    }
}
