//! The catalogue: one module per case family. A case is one [`harness::Case`] literal; adding
//! one touches its family's file (and its family's test file under `tests/`).

pub mod backlog;
pub mod close;
pub mod dualstack;
mod facts;
pub mod finwait2;
pub mod fork;
pub mod keepalive;
pub mod linger;
mod script;
pub mod shutdown;
pub mod sigpipe;
pub mod timewait;
pub mod unix;

use harness::{Case, Instance};

/// Every case, in catalogue order (family by family, as declared).
pub fn all() -> Vec<&'static Case> {
    [
        close::CASES,
        shutdown::CASES,
        sigpipe::CASES,
        linger::CASES,
        backlog::CASES,
        fork::CASES,
        timewait::CASES,
        finwait2::CASES,
        keepalive::CASES,
        dualstack::CASES,
        unix::CASES,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Every instance: each case once per kind it runs over, in catalogue order.
pub fn instances() -> Vec<Instance> {
    all().into_iter().flat_map(Case::instances).collect()
}

/// The case with this exact id.
pub fn by_id(id: &str) -> Option<&'static Case> {
    all().into_iter().find(|c| c.id == id)
}

/// The catalogue is complete: every case states, for each OS sockconf runs on, what it
/// expects there or why it cannot apply there; and every expectation says where it comes
/// from. These read the declarations only (nothing is run), so they hold on every OS.
#[cfg(test)]
mod completeness {
    use harness::judge::Provenance;
    use harness::Os;

    /// The OSes every case must state something for.
    const OSES: [Os; 3] = [Os::Linux, Os::Macos, Os::Freebsd];

    /// Panic with every gap, one line each, sorted by case and OS, and how many.
    fn none_of(gaps: Vec<String>, what: &str) {
        assert!(
            gaps.is_empty(),
            "{} {what}:\n  {}\n",
            gaps.len(),
            gaps.join("\n  ")
        );
    }

    /// An OS with neither is one where the case runs and is skipped as unjudged: on macOS and
    /// FreeBSD `cargo test` would fail it. An OS with both has an expectation that is never
    /// judged.
    #[test]
    fn every_case_has_an_expectation_or_a_reason_it_cannot_apply_on_every_os() {
        let mut gaps = vec![];
        for case in super::all() {
            for os in OSES {
                let expected = case.expect.iter().any(|e| e.os == os);
                match (expected, case.cannot_apply_on(os)) {
                    (false, None) => gaps.push(format!(
                        "{} on {}: no expectation, and no reason it cannot apply (Need::NotOn / OnlyOn)",
                        case.id,
                        os.name()
                    )),
                    (true, Some(why)) => gaps.push(format!(
                        "{} on {}: an expectation that is never judged, since the case cannot apply there ({why})",
                        case.id,
                        os.name()
                    )),
                    _ => {}
                }
            }
        }
        none_of(gaps, "(case, OS) pairs lack an expectation or a reason");
    }

    #[test]
    fn every_expectation_names_its_source() {
        let gaps: Vec<String> = super::all()
            .iter()
            .flat_map(|case| {
                case.expect
                    .iter()
                    .filter(|e| e.source.trim().is_empty())
                    .map(|e| {
                        format!(
                            "{} on {} ({}): no source",
                            case.id,
                            e.os.name(),
                            e.kernel.describe()
                        )
                    })
            })
            .collect();
        none_of(gaps, "expectations lack a source");
    }

    /// An observation names the releases it was made on, each of the expectation's own OS
    /// (`macos 15.1`, `freebsd 14.2`): a reading of another OS's source is not an observation.
    #[test]
    fn observed_expectations_name_releases_of_their_own_os() {
        let mut gaps = vec![];
        for case in super::all() {
            for e in case.expect {
                if let Provenance::Observed(on) = e.provenance {
                    let os = e.os.name();
                    if on.is_empty() {
                        gaps.push(format!("{} on {os}: observed on no release", case.id));
                    }
                    for release in on {
                        if !release.starts_with(&format!("{os} ")) {
                            gaps.push(format!(
                                "{} on {os}: observed on {release:?}, which is not a {os} release",
                                case.id
                            ));
                        }
                    }
                }
            }
        }
        none_of(gaps, "observations name the wrong releases");
    }
}
