//! What Debian's registry offers as kernels, read from apt's `Packages` lists: every amd64
//! kernel build by suite, version and flavour, in either package layout, and how a name on the
//! command line (`5.10`, `stable`, `sid`, `6.1.0-50`, `6.12.117-1`) picks one of them.
//!
//! The two layouts:
//! - up to 6.x (bullseye to trixie): `linux-image-<abi>[-<flavour>]-amd64-unsigned` holds
//!   `boot/vmlinuz-<release>` and `lib/modules/<release>/`;
//! - from 7.x (forky, sid): `linux-binary-<abi>[-<flavour>]-amd64` holds
//!   `usr/lib/modules/<release>/vmlinuz`, and `linux-modules-<abi>[-<flavour>]-amd64` the
//!   modules under `usr/lib/modules/<release>/kernel/`; `linux-image-*` is only a
//!   metapackage there.

use std::cmp::Ordering;

/// A build of the same kernel source for another purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Flavour {
    /// The generic build (`-amd64`).
    Plain,
    /// PREEMPT_RT (`-rt-amd64`).
    Rt,
    /// For virtual machines in clouds (`-cloud-amd64`).
    Cloud,
}

impl Flavour {
    /// What the package names and `uname -r` put before `amd64`.
    pub fn infix(self) -> &'static str {
        match self {
            Flavour::Plain => "",
            Flavour::Rt => "rt-",
            Flavour::Cloud => "cloud-",
        }
    }

    /// The name of the flavour, as `--flavour` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Plain => "plain",
            Flavour::Rt => "rt",
            Flavour::Cloud => "cloud",
        }
    }

    /// `6.1.0-50-rt` → (`6.1.0-50`, Rt); a plain ABI is taken as it is.
    fn split(abi_and_flavour: &str) -> (&str, Flavour) {
        for flavour in [Flavour::Rt, Flavour::Cloud] {
            let suffix = format!("-{}", flavour.infix().trim_end_matches('-'));
            if let Some(abi) = abi_and_flavour.strip_suffix(&suffix) {
                return (abi, flavour);
            }
        }
        (abi_and_flavour, Flavour::Plain)
    }
}

/// Which packages a kernel comes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `linux-image-<abi>-<flavour>amd64-unsigned`: image and modules in one package.
    Image,
    /// `linux-binary-<abi>-<flavour>amd64` (the image) and `linux-modules-…` (the modules).
    BinaryAndModules,
}

/// One kernel build a suite offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// The ABI name in the packages' names: `6.1.0-50`, `6.12.117+deb13`, `7.2.13+deb14`.
    pub abi: String,
    pub flavour: Flavour,
    /// The packages' version: `6.1.176-1`, `6.12.95-1~bpo12+1`.
    pub version: String,
    /// The suite (codename) whose list offers it: `bookworm`, `bullseye-security`, `sid`.
    pub suite: String,
    pub layout: Layout,
}

impl Offer {
    /// What `uname -r` says on this kernel: `6.1.0-50-rt-amd64`.
    pub fn release(&self) -> String {
        format!("{}-{}amd64", self.abi, self.flavour.infix())
    }

    /// The packages to download, as `name=version`.
    pub fn packages(&self) -> Vec<String> {
        let release = self.release();
        let names = match self.layout {
            Layout::Image => vec![format!("linux-image-{release}-unsigned")],
            Layout::BinaryAndModules => vec![
                format!("linux-binary-{release}"),
                format!("linux-modules-{release}"),
            ],
        };
        names
            .into_iter()
            .map(|n| format!("{n}={}", self.version))
            .collect()
    }
}

/// A suite's codename and what its Release file calls it now (`oldstable`, `unstable`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suite {
    pub codename: String,
    pub alias: Option<String>,
}

/// A suite's default kernel: what its `linux-image-[<flavour>-]amd64` metapackage depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Default {
    suite: String,
    flavour: Flavour,
    abi: String,
    version: String,
}

/// Every kernel the lists offer, and the suites they come from.
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    pub offers: Vec<Offer>,
    pub suites: Vec<Suite>,
    defaults: Vec<Default>,
}

impl Catalogue {
    /// Add the kernels of one suite's `Packages` list.
    pub fn add_packages(&mut self, suite: &str, packages: &str) {
        for stanza in packages.split("\n\n") {
            let Some(name) = field(stanza, "Package") else {
                continue;
            };
            if !name.starts_with("linux-") {
                continue;
            }
            let Some(version) = field(stanza, "Version") else {
                continue;
            };
            if let Some((abi, flavour, layout)) = kernel_package(name) {
                self.offers.push(Offer {
                    abi: abi.to_string(),
                    flavour,
                    version: version.to_string(),
                    suite: suite.to_string(),
                    layout,
                });
            } else if let Some(flavour) = metapackage(name) {
                let abi = field(stanza, "Depends").and_then(|depends| {
                    depends.split(',').find_map(|d| {
                        let dep = d.split_whitespace().next()?;
                        let image = format!("{dep}-unsigned");
                        let (abi, f, _) = kernel_package(&image)?;
                        (f == flavour).then(|| abi.to_string())
                    })
                });
                if let Some(abi) = abi {
                    self.defaults.push(Default {
                        suite: suite.to_string(),
                        flavour,
                        abi,
                        version: version.to_string(),
                    });
                }
            }
        }
    }

    /// Name a suite by its Release file's `Suite:` field (`oldstable` for bookworm).
    pub fn add_suite(&mut self, codename: &str, release_file: &str) {
        let alias = field(release_file, "Suite")
            .filter(|s| *s != codename)
            .map(str::to_string);
        self.suites.push(Suite {
            codename: codename.to_string(),
            alias,
        });
    }

    /// The kernel `spec` names: a suite (codename or alias: its default kernel, updates from its
    /// `-security` suite included), an ABI (`6.1.0-50`) or package version (`6.1.176-1`), or a
    /// series (`6.1`, `7.2`: the newest build of it in any suite).
    pub fn resolve(&self, spec: &str, flavour: Flavour) -> Result<Offer, String> {
        if let Some(codename) = self.codename_of(spec) {
            return self.suite_default(codename, flavour).ok_or_else(|| {
                format!(
                    "suite {spec} offers no {} kernel; {}",
                    flavour.name(),
                    self.what_exists(flavour)
                )
            });
        }
        let offers = || self.offers.iter().filter(|o| o.flavour == flavour);
        let exact = offers()
            .filter(|o| o.abi == spec || o.version == spec)
            .max_by(|a, b| newer(a, b));
        let series = || {
            offers()
                .filter(|o| {
                    o.abi
                        .strip_prefix(spec)
                        .is_some_and(|rest| rest.starts_with('.'))
                })
                .max_by(|a, b| newer(a, b))
        };
        exact.or_else(series).cloned().ok_or_else(|| {
            format!(
                "no Debian kernel {spec}{}; {}",
                match flavour {
                    Flavour::Plain => String::new(),
                    f => format!(" ({})", f.name()),
                },
                self.what_exists(flavour)
            )
        })
    }

    /// The codename a suite name stands for, if it is one.
    fn codename_of(&self, name: &str) -> Option<&str> {
        let name = if name == "unstable" { "sid" } else { name };
        self.suites
            .iter()
            .find(|s| s.codename == name || s.alias.as_deref() == Some(name))
            .map(|s| s.codename.as_str())
            .filter(|c| !c.contains('-'))
    }

    /// The newest kernel the suite's metapackage (or its `-security` suite's) depends on.
    fn suite_default(&self, codename: &str, flavour: Flavour) -> Option<Offer> {
        let security = format!("{codename}-security");
        let default = self
            .defaults
            .iter()
            .filter(|d| d.flavour == flavour && (d.suite == codename || d.suite == security))
            .max_by(|a, b| compare_versions(&a.version, &b.version))?;
        self.offers
            .iter()
            .find(|o| o.flavour == flavour && o.abi == default.abi && o.version == default.version)
            .cloned()
    }

    /// One line: the series on offer and where, and the suite names.
    pub fn what_exists(&self, flavour: Flavour) -> String {
        let mut series: Vec<(String, Vec<String>)> = vec![];
        for offer in self.offers.iter().filter(|o| o.flavour == flavour) {
            let name = offer.abi.split('.').take(2).collect::<Vec<_>>().join(".");
            let name = name.split('-').next().unwrap_or(&name).to_string();
            match series.iter_mut().find(|(s, _)| *s == name) {
                Some((_, suites)) if !suites.contains(&offer.suite) => {
                    suites.push(offer.suite.clone())
                }
                Some(_) => {}
                None => series.push((name, vec![offer.suite.clone()])),
            }
        }
        series.sort_by(|a, b| compare_versions(&a.0, &b.0));
        for (_, suites) in &mut series {
            suites.sort();
        }
        let series: Vec<String> = series
            .iter()
            .map(|(s, suites)| format!("{s} ({})", suites.join(", ")))
            .collect();
        // Oldest first, by the version of their default kernel.
        let mut suites: Vec<&Suite> = self
            .suites
            .iter()
            .filter(|s| !s.codename.contains('-'))
            .collect();
        let default_version = |s: &Suite| {
            self.defaults
                .iter()
                .filter(|d| d.suite == s.codename)
                .map(|d| d.version.clone())
                .max_by(|a, b| compare_versions(a, b))
                .unwrap_or_default()
        };
        suites.sort_by(|a, b| compare_versions(&default_version(a), &default_version(b)));
        let suites: Vec<String> = suites
            .into_iter()
            .map(|s| match &s.alias {
                Some(alias) => format!("{} ({alias})", s.codename),
                None => s.codename.clone(),
            })
            .collect();
        if series.is_empty() {
            return "apt's lists offer no amd64 kernel".into();
        }
        format!(
            "Debian offers {}; suites: {}; or a full version such as {}, or an image's path",
            series.join(", "),
            suites.join(", "),
            self.offers
                .iter()
                .filter(|o| o.flavour == flavour)
                .max_by(|a, b| newer(a, b))
                .map_or("6.1.0-50", |o| o.abi.as_str())
        )
    }
}

/// The newer of two offers by package version; on a tie, the one from the suite named first
/// in sorting (a release's own suite before its `-security` copy of the same build).
fn newer(a: &Offer, b: &Offer) -> Ordering {
    compare_versions(&a.version, &b.version).then_with(|| b.suite.cmp(&a.suite))
}

/// The value of a `Name: value` field of a deb822 stanza (first line only).
fn field<'a>(stanza: &'a str, name: &str) -> Option<&'a str> {
    stanza.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(':')?;
        Some(value.trim())
    })
}

/// `linux-image-6.1.0-50-rt-amd64-unsigned` → (`6.1.0-50`, Rt, Image);
/// `linux-binary-7.2.13+deb14-amd64` → (`7.2.13+deb14`, Plain, BinaryAndModules).
fn kernel_package(name: &str) -> Option<(&str, Flavour, Layout)> {
    let (rest, layout) = if let Some(rest) = name
        .strip_prefix("linux-image-")
        .and_then(|r| r.strip_suffix("-amd64-unsigned"))
    {
        (rest, Layout::Image)
    } else {
        let rest = name.strip_prefix("linux-binary-")?.strip_suffix("-amd64")?;
        (rest, Layout::BinaryAndModules)
    };
    let (abi, flavour) = Flavour::split(rest);
    let is_version = abi.starts_with(|c: char| c.is_ascii_digit())
        && abi
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+-~".contains(c));
    is_version.then_some((abi, flavour, layout))
}

/// `linux-image-amd64`, `linux-image-rt-amd64`, `linux-image-cloud-amd64`: a suite's default.
fn metapackage(name: &str) -> Option<Flavour> {
    [Flavour::Plain, Flavour::Rt, Flavour::Cloud]
        .into_iter()
        .find(|f| name == format!("linux-image-{}amd64", f.infix()))
}

/// Debian's version order (deb-version(7)): epoch, then upstream version and revision compared
/// as alternating non-digit parts (letters before other characters, `~` before everything,
/// even the end) and numbers.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let split = |v: &str| -> (u64, String, String) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) if e.chars().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
            _ => (0, v),
        };
        let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
        (epoch, upstream.to_string(), revision.to_string())
    };
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| compare_part(&ua, &ub))
        .then_with(|| compare_part(&ra, &rb))
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let order = |c: Option<char>| -> i32 {
        match c {
            None => 0,
            Some('~') => -1,
            Some(c) if c.is_ascii_alphabetic() => c as i32,
            Some(c) => c as i32 + 256,
        }
    };
    let (mut a, mut b) = (a, b);
    while !a.is_empty() || !b.is_empty() {
        let text_a = a.find(|c: char| c.is_ascii_digit()).unwrap_or(a.len());
        let text_b = b.find(|c: char| c.is_ascii_digit()).unwrap_or(b.len());
        let (mut ta, mut tb) = (a[..text_a].chars(), b[..text_b].chars());
        loop {
            let (ca, cb) = (ta.next(), tb.next());
            if ca.is_none() && cb.is_none() {
                break;
            }
            match order(ca).cmp(&order(cb)) {
                Ordering::Equal => {}
                other => return other,
            }
        }
        (a, b) = (&a[text_a..], &b[text_b..]);
        let digits_a = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
        let digits_b = b.find(|c: char| !c.is_ascii_digit()).unwrap_or(b.len());
        let number = |d: &str| d.parse::<u64>().unwrap_or(0);
        match number(&a[..digits_a]).cmp(&number(&b[..digits_b])) {
            Ordering::Equal => {}
            other => return other,
        }
        (a, b) = (&a[digits_a..], &b[digits_b..]);
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// Stanzas as apt's lists hold them, cut to the fields that matter (and a few that do not).
    const BULLSEYE: &str = "\
Package: linux-image-5.10.0-32-amd64-unsigned
Source: linux
Version: 5.10.223-1
Depends: kmod

Package: linux-image-5.10.0-32-rt-amd64-unsigned
Source: linux
Version: 5.10.223-1

Package: linux-image-amd64
Source: linux-signed-amd64 (5.10.223+1)
Version: 5.10.223-1
Depends: linux-image-5.10.0-32-amd64 (= 5.10.223-1)

Package: linux-image-5.10.0-32-amd64-dbg
Version: 5.10.223-1

Package: hello
Version: 2.10-2
";
    const BULLSEYE_SECURITY: &str = "\
Package: linux-image-5.10.0-46-amd64-unsigned
Version: 5.10.262-1

Package: linux-image-6.1.0-0.deb11.52-amd64-unsigned
Version: 6.1.158-1~deb11u1

Package: linux-image-amd64
Version: 5.10.262-1
Depends: linux-image-5.10.0-46-amd64 (= 5.10.262-1)
";
    const BOOKWORM: &str = "\
Package: linux-image-6.1.0-50-amd64-unsigned
Version: 6.1.176-1

Package: linux-image-6.1.0-50-cloud-amd64-unsigned
Version: 6.1.176-1

Package: linux-image-amd64
Version: 6.1.176-1
Depends: linux-image-6.1.0-50-amd64 (= 6.1.176-1)

Package: linux-image-cloud-amd64
Version: 6.1.176-1
Depends: linux-image-6.1.0-50-cloud-amd64 (= 6.1.176-1)
";
    const BOOKWORM_BACKPORTS: &str = "\
Package: linux-image-6.12.95+deb12-amd64-unsigned
Version: 6.12.95-1~bpo12+1
";
    const TRIXIE: &str = "\
Package: linux-image-6.12.117+deb13-amd64-unsigned
Version: 6.12.117-1

Package: linux-image-amd64
Version: 6.12.117-1
Depends: linux-image-6.12.117+deb13-amd64 (= 6.12.117-1)
";
    const TRIXIE_SECURITY: &str = "\
Package: linux-image-6.12.118+deb13-amd64-unsigned
Version: 6.12.118-1

Package: linux-image-amd64
Version: 6.12.118-1
Depends: linux-image-6.12.118+deb13-amd64 (= 6.12.118-1)
";
    /// sid's layout: the image package is a metapackage, the kernel is in binary + modules.
    const SID: &str = "\
Package: linux-image-7.2.13+deb14-amd64
Version: 7.2.13-1
Depends: linux-base-7.2.13+deb14-amd64 (= 7.2.13-1), linux-binary-7.2.13+deb14-amd64 (= 7.2.13-1), linux-modules-7.2.13+deb14-amd64 (= 7.2.13-1)

Package: linux-binary-7.2.13+deb14-amd64
Version: 7.2.13-1

Package: linux-binary-7.2.13+deb14-rt-amd64
Version: 7.2.13-1

Package: linux-modules-7.2.13+deb14-amd64
Version: 7.2.13-1

Package: linux-image-amd64
Version: 7.2.13-1
Depends: linux-base-amd64 (= 7.2.13-1), linux-image-7.2.13+deb14-amd64 (= 7.2.13-1)
";

    fn catalogue() -> Catalogue {
        let mut c = Catalogue::default();
        for (suite, alias, packages) in [
            ("bullseye", "oldoldstable", BULLSEYE),
            (
                "bullseye-security",
                "oldoldstable-security",
                BULLSEYE_SECURITY,
            ),
            ("bookworm", "oldstable", BOOKWORM),
            (
                "bookworm-backports",
                "oldstable-backports",
                BOOKWORM_BACKPORTS,
            ),
            ("trixie", "stable", TRIXIE),
            ("trixie-security", "stable-security", TRIXIE_SECURITY),
            ("sid", "unstable", SID),
        ] {
            c.add_suite(
                suite,
                &format!("Origin: Debian\nSuite: {alias}\nCodename: {suite}\n"),
            );
            c.add_packages(suite, packages);
        }
        c
    }

    fn resolved(spec: &str, flavour: Flavour) -> Result<(String, String), String> {
        catalogue().resolve(spec, flavour).map(|o| (o.abi, o.suite))
    }

    #[rstest]
    #[case::series_newest_of_two_suites("5.10", "5.10.0-46", "bullseye-security")]
    #[case::series_not_a_longer_one("6.1", "6.1.0-50", "bookworm")]
    #[case::series_across_suites("6.12", "6.12.118+deb13", "trixie-security")]
    #[case::series_in_the_new_layout("7.2", "7.2.13+deb14", "sid")]
    #[case::codename_with_its_security_updates("bullseye", "5.10.0-46", "bullseye-security")]
    #[case::alias("oldoldstable", "5.10.0-46", "bullseye-security")]
    #[case::codename_default_not_its_backport("bookworm", "6.1.0-50", "bookworm")]
    #[case::stable("stable", "6.12.118+deb13", "trixie-security")]
    #[case::sid("sid", "7.2.13+deb14", "sid")]
    #[case::unstable("unstable", "7.2.13+deb14", "sid")]
    #[case::abi("6.12.117+deb13", "6.12.117+deb13", "trixie")]
    #[case::package_version("6.12.95-1~bpo12+1", "6.12.95+deb12", "bookworm-backports")]
    fn names_resolve(#[case] spec: &str, #[case] abi: &str, #[case] suite: &str) {
        assert_eq!(
            resolved(spec, Flavour::Plain),
            Ok((abi.to_string(), suite.to_string()))
        );
    }

    #[test]
    fn layouts_name_their_packages() {
        let c = catalogue();
        let old = c.resolve("6.1", Flavour::Cloud).unwrap();
        assert_eq!(old.release(), "6.1.0-50-cloud-amd64");
        assert_eq!(
            old.packages(),
            ["linux-image-6.1.0-50-cloud-amd64-unsigned=6.1.176-1"]
        );
        let new = c.resolve("7.2", Flavour::Plain).unwrap();
        assert_eq!(new.layout, Layout::BinaryAndModules);
        assert_eq!(
            new.packages(),
            [
                "linux-binary-7.2.13+deb14-amd64=7.2.13-1",
                "linux-modules-7.2.13+deb14-amd64=7.2.13-1"
            ]
        );
    }

    #[test]
    fn a_flavour_resolves_among_its_own_builds() {
        assert_eq!(
            resolved("7.2", Flavour::Rt),
            Ok(("7.2.13+deb14".into(), "sid".into()))
        );
        assert_eq!(
            resolved("bookworm", Flavour::Cloud),
            Ok(("6.1.0-50".into(), "bookworm".into()))
        );
    }

    #[test]
    fn an_unknown_version_names_what_exists_in_one_line() {
        let e = resolved("4.19", Flavour::Plain).unwrap_err();
        assert_eq!(
            e,
            "no Debian kernel 4.19; Debian offers 5.10 (bullseye, bullseye-security), \
             6.1 (bookworm, bullseye-security), 6.12 (bookworm-backports, trixie, trixie-security), \
             7.2 (sid); suites: bullseye (oldoldstable), bookworm (oldstable), trixie (stable), \
             sid (unstable); or a full version such as 7.2.13+deb14, or an image's path"
        );
        assert!(!e.contains('\n'));
        let e = resolved("6.1.0-28", Flavour::Plain).unwrap_err();
        assert!(
            e.starts_with("no Debian kernel 6.1.0-28; Debian offers 5.10"),
            "{e}"
        );
        let e = resolved("trixie", Flavour::Rt).unwrap_err();
        assert!(
            e.starts_with(
                "suite trixie offers no rt kernel; Debian offers 5.10 (bullseye), 7.2 (sid);"
            ),
            "{e}"
        );
    }

    #[rstest]
    #[case("6.1.176-1", "6.1.158-1~deb11u1", Ordering::Greater)]
    #[case("6.1.158-1", "6.1.158-1~deb11u1", Ordering::Greater)]
    #[case("6.12.95-1~bpo12+1", "6.12.117-1", Ordering::Less)]
    #[case("6.12.118-1", "6.12.117-1", Ordering::Greater)]
    #[case("1:1.0-1", "2.0-1", Ordering::Greater)]
    #[case("1.0~rc1-1", "1.0-1", Ordering::Less)]
    #[case("1.0a-1", "1.0+-1", Ordering::Less)]
    #[case("7.2", "6.12", Ordering::Greater)]
    #[case("5.10.223-1", "5.10.223-1", Ordering::Equal)]
    fn debian_version_order(#[case] a: &str, #[case] b: &str, #[case] order: Ordering) {
        assert_eq!(compare_versions(a, b), order);
        assert_eq!(compare_versions(b, a), order.reverse());
    }
}
