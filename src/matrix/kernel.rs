//! Debian kernels for the matrix: resolve a version against apt's lists, download the
//! `linux-image-<version>-amd64-unsigned` package, and keep what a boot needs (the image, its
//! config, and the modules the suite needs) in a cache under `target/`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The modules the suite needs that Debian builds as modules, each after the ones it needs:
/// socket diagnostics (sock_diag, the TCP states) and veth (the cases that need a real link).
/// Where a kernel has one built in, or lacks it, it is left out.
const GUEST_MODULES: &[&str] = &[
    "net/ipv4/inet_diag",
    "net/ipv4/tcp_diag",
    "net/ipv4/udp_diag",
    "net/ipv4/raw_diag",
    "net/unix/unix_diag",
    "net/packet/af_packet_diag",
    "net/netlink/netlink_diag",
    "drivers/net/veth",
];

/// A kernel unpacked in the cache, ready to boot.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// The package's version part: `6.1.0-56`, `6.12.117+deb12`.
    pub version: String,
    /// What `uname -r` will say: `6.1.0-56-amd64` (empty when unknown).
    pub release: String,
    pub image: PathBuf,
    /// The modules to load, in order.
    pub modules: Vec<PathBuf>,
}

impl Kernel {
    /// A kernel image given by path: booted without modules, under its file name.
    pub fn image_only(image: &Path) -> Kernel {
        Kernel {
            version: image
                .file_name()
                .map_or("image".into(), |n| n.to_string_lossy().into_owned()),
            release: String::new(),
            image: image.to_path_buf(),
            modules: vec![],
        }
    }
}

pub fn package_name(version: &str) -> String {
    format!("linux-image-{version}-amd64-unsigned")
}

/// `6.1` or `6.12` (a series) becomes the newest such package apt knows; a full version
/// (`6.1.0-56`) is taken as it is.
pub fn resolve(spec: &str) -> Result<String, String> {
    if spec.matches('.').count() > 1 || spec.contains('-') {
        return Ok(spec.to_string());
    }
    let output = Command::new("apt-cache")
        .args(["search", "--names-only", "^linux-image-.*-amd64-unsigned$"])
        .output()
        .map_err(|e| format!("cannot run apt-cache to find Debian's {spec} kernels: {e}"))?;
    let names = String::from_utf8_lossy(&output.stdout);
    newest_in_series(spec, names.lines().filter_map(|l| l.split_whitespace().next())).ok_or_else(|| {
        format!("apt knows no linux-image-{spec}.*-amd64-unsigned package (is this Debian, and has `apt-get update` run?)")
    })
}

/// The newest plain (not cloud, not rt) kernel of `series` among package names.
fn newest_in_series<'a>(series: &str, names: impl Iterator<Item = &'a str>) -> Option<String> {
    names
        .filter_map(|n| {
            n.strip_prefix("linux-image-")?
                .strip_suffix("-amd64-unsigned")
        })
        .filter(|v| {
            v.chars()
                .all(|c| c.is_ascii_digit() || ".-+deb".contains(c))
                && v.strip_prefix(series)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
        .max_by_key(|v| numbers(v))
        .map(str::to_string)
}

/// The digit groups of a version, for ordering: `6.12.117+deb12` is [6, 12, 117, 12].
fn numbers(version: &str) -> Vec<u32> {
    version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

/// The kernel from the cache, downloading and unpacking it first if need be.
pub fn fetch(version: &str, cache: &Path) -> Result<Kernel, String> {
    let dir = cache.join(version);
    if let Some(kernel) = cached(version, &dir) {
        return Ok(kernel);
    }
    let staging = cache.join(format!(".staging-{version}"));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    let package = package_name(version);
    run(
        Command::new("apt-get")
            .args(["download", "-q", &package])
            .current_dir(&staging),
        &format!("apt-get download {package}"),
    )?;
    let deb = std::fs::read_dir(&staging)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| format!("apt-get download {package} left no .deb"))?;
    let tree = staging.join("tree");
    run(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree),
        &format!("dpkg-deb -x {}", deb.display()),
    )?;
    keep_what_boots(&tree, &dir)?;
    let _ = std::fs::remove_dir_all(&staging);
    cached(version, &dir).ok_or_else(|| format!("{package} holds no boot/vmlinuz-*"))
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        // apt says the same thing three ways (name, glob, regex), after any warnings: its first
        // error line is enough.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said = stderr
            .lines()
            .find(|l| l.starts_with("E:"))
            .or_else(|| stderr.lines().find(|l| !l.trim().is_empty()))
            .unwrap_or("");
        Err(format!("{what}: {}: {}", out.status, said.trim()))
    }
}

/// Copy the image, the config and the diagnostics modules out of the unpacked package; the
/// file `release` is written last and marks the cache entry complete.
fn keep_what_boots(tree: &Path, dir: &Path) -> Result<(), String> {
    let io = |e: std::io::Error| format!("caching the kernel in {}: {e}", dir.display());
    let boot = tree.join("boot");
    let image = std::fs::read_dir(&boot)
        .map_err(io)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("vmlinuz-"))
        .ok_or_else(|| format!("no boot/vmlinuz-* in {}", tree.display()))?;
    let release = image["vmlinuz-".len()..].to_string();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("modules")).map_err(io)?;
    std::fs::copy(boot.join(&image), dir.join("vmlinuz")).map_err(io)?;
    let _ = std::fs::copy(boot.join(format!("config-{release}")), dir.join("config"));
    let kernel_dir = tree.join("lib/modules").join(&release).join("kernel");
    for (i, module) in GUEST_MODULES.iter().enumerate() {
        for ext in ["ko", "ko.xz", "ko.zst", "ko.gz"] {
            let from = kernel_dir.join(format!("{module}.{ext}"));
            if from.exists() {
                let name = Path::new(module).file_name().expect("module names a file");
                let to = dir
                    .join("modules")
                    .join(format!("{i:02}-{}.{ext}", name.to_string_lossy()));
                std::fs::copy(&from, to).map_err(io)?;
            }
        }
    }
    std::fs::write(dir.join(WANTED), GUEST_MODULES.join("\n")).map_err(io)?;
    std::fs::write(dir.join("release"), &release).map_err(io)
}

/// The module list a cache entry was made for: an entry made for another list is made again.
const WANTED: &str = "modules.wanted";

fn cached(version: &str, dir: &Path) -> Option<Kernel> {
    if std::fs::read_to_string(dir.join(WANTED)).ok()? != GUEST_MODULES.join("\n") {
        return None;
    }
    let release = std::fs::read_to_string(dir.join("release")).ok()?;
    let mut modules: Vec<PathBuf> = std::fs::read_dir(dir.join("modules"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    modules.sort();
    Some(Kernel {
        version: version.to_string(),
        release: release.trim().to_string(),
        image: dir.join("vmlinuz"),
        modules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTED: &[&str] = &[
        "linux-image-6.1.0-9-amd64-unsigned",
        "linux-image-6.1.0-56-amd64-unsigned",
        "linux-image-6.1.0-56-cloud-amd64-unsigned",
        "linux-image-6.12.9+deb12-amd64-unsigned",
        "linux-image-6.12.117+deb12-amd64-unsigned",
        "linux-image-6.12.117+deb12-rt-amd64-unsigned",
    ];

    #[test]
    fn a_series_resolves_to_its_newest_plain_kernel() {
        let newest = |s| newest_in_series(s, LISTED.iter().copied());
        assert_eq!(newest("6.1").as_deref(), Some("6.1.0-56"));
        assert_eq!(newest("6.12").as_deref(), Some("6.12.117+deb12"));
        assert_eq!(newest("5.10"), None);
    }

    #[test]
    fn a_full_version_is_taken_as_it_is() {
        assert_eq!(resolve("6.1.0-28").as_deref(), Ok("6.1.0-28"));
    }
}
