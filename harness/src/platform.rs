//! What machine the case runs on: OS and kernel release.

use serde::{Deserialize, Serialize};

/// The operating systems a case can declare expectations for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    Linux,
    Macos,
    Freebsd,
    Other,
}

impl Os {
    /// The OS this binary was built for.
    pub const fn current() -> Os {
        if cfg!(target_os = "linux") {
            Os::Linux
        } else if cfg!(target_os = "macos") {
            Os::Macos
        } else if cfg!(target_os = "freebsd") {
            Os::Freebsd
        } else {
            Os::Other
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Os::Linux => "linux",
            Os::Macos => "macos",
            Os::Freebsd => "freebsd",
            Os::Other => "other",
        }
    }
}

/// The running kernel's release string, as `uname -r` prints it.
pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// `major.minor.patch` from a release such as `6.1.0-28-amd64` or `23.6.0`.
/// Missing parts count as 0; anything unparsable gives `(0, 0, 0)`.
pub fn parse_release(release: &str) -> (u32, u32, u32) {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .take_while(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::debian("6.1.0-28-amd64", (6, 1, 0))]
    #[case::local_build("6.18.44-fc-v595", (6, 18, 44))]
    #[case::darwin("23.6.0", (23, 6, 0))]
    #[case::freebsd("14.1-RELEASE", (14, 1, 0))]
    #[case::garbage("unknown", (0, 0, 0))]
    fn parses_kernel_releases(#[case] release: &str, #[case] want: (u32, u32, u32)) {
        assert_eq!(parse_release(release), want);
    }
}
