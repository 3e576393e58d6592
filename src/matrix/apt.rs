//! sockconf's own apt: a sources list, lists, cache and dpkg status under `target/apt/`, for
//! the Debian suites whose kernels the matrix boots. The system's apt configuration is read
//! (for where its Debian archive is, and for its proxy and other settings) and never written.

use super::debian::Catalogue;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The suites that hold kernels from 5.10 to the newest: each Debian release still served,
/// its security updates, bookworm's backports (6.12 for bookworm), testing and unstable.
const SUITES: &[&str] = &[
    "bullseye",
    "bookworm",
    "bookworm-backports",
    "trixie",
    "forky",
    "sid",
];
const SECURITY_SUITES: &[&str] = &["bullseye-security", "bookworm-security", "trixie-security"];

/// Lists older than this are read again before a name is resolved.
const LISTS_FRESH_FOR: Duration = Duration::from_secs(24 * 3600);

/// The keyring of Debian's archive keys, where the system has it.
const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

pub struct Apt {
    root: PathBuf,
}

impl Apt {
    pub fn new(root: &Path) -> Apt {
        Apt {
            root: root.to_path_buf(),
        }
    }

    fn sources_list(&self) -> PathBuf {
        self.root.join("sources.list")
    }

    fn lists(&self) -> PathBuf {
        self.root.join("lists")
    }

    /// The stamp of the last successful `apt-get update` for the current sources list.
    fn updated(&self) -> PathBuf {
        self.root.join("updated")
    }

    /// `-o` options that point apt at our files instead of the system's (which it still reads
    /// for everything else: proxies, validity checks).
    fn options(&self) -> Vec<String> {
        let abs = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
        let mut options = vec![];
        for (name, value) in [
            ("Dir::Etc::SourceList", abs(self.sources_list())),
            (
                "Dir::Etc::SourceParts",
                abs(self.root.join("sources.list.d")),
            ),
            ("Dir::State::Lists", abs(self.lists())),
            ("Dir::Cache", abs(self.root.join("cache"))),
            ("Dir::State::status", abs(self.root.join("status"))),
        ] {
            options.push("-o".into());
            options.push(format!("{name}={}", value.display()));
        }
        for setting in [
            // Plain-text lists, which the catalogue reads; no translations, no AppStream data.
            "Acquire::GzipIndexes=false",
            "Acquire::Languages=none",
            "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false",
            // Downloads land in target/, which the _apt sandbox user may not write to.
            "APT::Sandbox::User=root",
        ] {
            options.push("-o".into());
            options.push(setting.into());
        }
        options
    }

    fn apt_get(&self) -> Command {
        let mut command = Command::new("apt-get");
        command.args(self.options()).arg("-q");
        command
    }

    /// The catalogue of kernels, from lists read again when they are missing or older than a
    /// day. Stale lists serve when reading them again fails.
    pub fn catalogue(&self) -> Result<Catalogue, String> {
        let fresh = std::fs::metadata(self.updated())
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age < LISTS_FRESH_FOR));
        if !fresh {
            let updated =
                system_archives().and_then(|archives| self.update(&sources_list(&archives)));
            if let Err(e) = updated {
                if std::fs::metadata(self.updated()).is_err() {
                    return Err(e);
                }
                super::log(&format!("{e}; using the lists of an earlier update"));
            }
        }
        self.read_lists()
    }

    fn update(&self, sources: &str) -> Result<(), String> {
        let io = |e: std::io::Error| format!("{}: {e}", self.root.display());
        for dir in ["sources.list.d", "lists/partial", "cache/archives/partial"] {
            std::fs::create_dir_all(self.root.join(dir)).map_err(io)?;
        }
        let _ = std::fs::remove_file(self.updated());
        std::fs::write(self.sources_list(), sources).map_err(io)?;
        if !self.root.join("status").exists() {
            std::fs::write(self.root.join("status"), "").map_err(io)?;
        }
        super::log("reading Debian's kernel lists (apt-get update, sockconf's own sources under target/apt)");
        run(self.apt_get().arg("update"), "apt-get update")?;
        std::fs::write(self.updated(), "").map_err(io)
    }

    /// Every `*_Packages` list with its suite (the codename in the file's name), and every
    /// suite's Release file for what it is called now.
    fn read_lists(&self) -> Result<Catalogue, String> {
        let mut catalogue = Catalogue::default();
        let entries = std::fs::read_dir(self.lists())
            .map_err(|e| format!("{}: {e}", self.lists().display()))?;
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let path = self.lists().join(&name);
            if let Some(suite) = suite_of_list(&name, "_main_binary-amd64_Packages") {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                catalogue.add_packages(suite, &text);
            } else if let Some(suite) = suite_of_list(&name, "_InRelease") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                catalogue.add_suite(suite, &text);
            }
        }
        Ok(catalogue)
    }

    /// Download packages (`name=version`) into `dir`.
    pub fn download(&self, packages: &[String], dir: &Path) -> Result<(), String> {
        run(
            self.apt_get()
                .arg("download")
                .args(packages)
                .current_dir(dir),
            &format!("apt-get download {}", packages.join(" ")),
        )
    }
}

/// `deb.debian.org_debian_dists_bookworm-security_main_binary-amd64_Packages` → bookworm-security.
fn suite_of_list<'a>(file_name: &'a str, suffix: &str) -> Option<&'a str> {
    let rest = file_name.strip_suffix(suffix)?;
    let (_, suite) = rest.rsplit_once("_dists_")?;
    (!suite.contains('_')).then_some(suite)
}

/// Where the system's apt finds Debian: the archive and the security archive.
#[derive(Debug, PartialEq, Eq)]
struct Archives {
    main: String,
    security: Option<String>,
}

/// Read from the system's apt configuration, never from a name of our own: the archive is the
/// source of this system's release (`VERSION_CODENAME`), the security archive that of its
/// `-security` suite.
fn system_archives() -> Result<Archives, String> {
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let codename = os_release
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|c| c.trim_matches('"').to_string())
        .ok_or("the Debian kernels are read with apt, and this is no Debian system (/etc/os-release names no VERSION_CODENAME)")?;
    let out = Command::new("apt-get")
        .args([
            "indextargets",
            "--no-release-info",
            "--format",
            "$(REPO_URI) $(RELEASE)",
            "Created-By: Packages",
        ])
        .output()
        .map_err(|e| format!("cannot run apt-get to find the system's Debian archive: {e}"))?;
    archives_in(&String::from_utf8_lossy(&out.stdout), &codename).ok_or_else(|| {
        format!("the system's apt sources name no archive for its release {codename}")
    })
}

/// From `apt-get indextargets` lines (`<repository URI> <suite>`).
fn archives_in(targets: &str, codename: &str) -> Option<Archives> {
    let repo_of = |suite: &str| {
        targets.lines().find_map(|l| {
            let (uri, release) = l.trim().rsplit_once(' ')?;
            (release == suite).then(|| uri.trim_end_matches('/').to_string())
        })
    };
    Some(Archives {
        main: repo_of(codename)?,
        security: repo_of(&format!("{codename}-security")),
    })
}

/// Our sources list: the kernel suites from the system's archives.
fn sources_list(archives: &Archives) -> String {
    let options = if Path::new(DEBIAN_KEYRING).exists() {
        format!(" [signed-by={DEBIAN_KEYRING}]")
    } else {
        String::new()
    };
    let mut text =
        "# Written by sockconf matrix: Debian's kernel suites, from the system's archives.\n"
            .to_string();
    for suite in SUITES {
        text += &format!("deb{options} {} {suite} main\n", archives.main);
    }
    if let Some(security) = &archives.security {
        for suite in SECURITY_SUITES {
            text += &format!("deb{options} {security} {suite} main\n");
        }
    }
    text
}

/// Run a command as a child of the run (ended by an interrupt, dying with us); its error is its
/// first `E:` line (apt says the same thing several ways).
pub fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    use crate::interrupt::SpawnOwned;
    let out = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn_owned()
        .and_then(|child| child.wait_with_output())
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said = stderr
            .lines()
            .find(|l| l.starts_with("E:"))
            .or_else(|| stderr.lines().find(|l| !l.trim().is_empty()))
            .unwrap_or("");
        Err(format!("{what}: {}: {}", out.status, said.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archives_are_those_of_the_systems_release() {
        let targets = "http://mirror.example/debian-security/ bookworm-security\n\
                       http://mirror.example/debian/ bookworm\n\
                       http://mirror.example/debian/ bookworm-updates\n\
                       https://other.example/apt/ nodistro\n";
        assert_eq!(
            archives_in(targets, "bookworm"),
            Some(Archives {
                main: "http://mirror.example/debian".into(),
                security: Some("http://mirror.example/debian-security".into()),
            })
        );
        assert_eq!(archives_in(targets, "trixie"), None);
    }

    #[test]
    fn lists_name_their_suite() {
        assert_eq!(
            suite_of_list(
                "mirror.example_debian_dists_bookworm-security_main_binary-amd64_Packages",
                "_main_binary-amd64_Packages"
            ),
            Some("bookworm-security")
        );
        assert_eq!(
            suite_of_list("mirror.example_debian_dists_sid_InRelease", "_InRelease"),
            Some("sid")
        );
        assert_eq!(suite_of_list("lock", "_InRelease"), None);
    }
}
