//! Debian kernels for the matrix: download the packages of a kernel the catalogue offers
//! (either layout, see `debian.rs`) with sockconf's own apt, and keep what a boot needs (the
//! image, its config, and the modules the suite needs) in a cache under `target/`.

use super::apt::Apt;
use super::debian::Offer;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The modules the suite needs that Debian builds as modules, each after the ones it needs:
/// socket diagnostics (sock_diag, the TCP states) and veth (the cases that need a real link).
/// Where a kernel has one built in, or lacks it, it is left out. Both layouts keep them at
/// these paths under `lib/modules/<release>/kernel/` (`usr/lib/...` in the new one).
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
    /// The column's name: `6.1.0-56`, `6.12.117+deb12-rt` (ABI and flavour), or an image's
    /// file name.
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

/// The kernel from the cache, downloading and unpacking it first if need be.
pub fn fetch(offer: &Offer, apt: &Apt, cache: &Path) -> Result<Kernel, String> {
    let release = offer.release();
    let name = release
        .strip_suffix("-amd64")
        .unwrap_or(&release)
        .to_string();
    let dir = cache.join(&release);
    if let Some(kernel) = cached(&name, &offer.version, &dir) {
        return Ok(kernel);
    }
    let staging = cache.join(format!(".staging-{release}"));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    apt.download(&offer.packages(), &staging)?;
    let tree = staging.join("tree");
    std::fs::create_dir_all(&tree).map_err(|e| format!("{}: {e}", tree.display()))?;
    let debs: Vec<PathBuf> = std::fs::read_dir(&staging)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    for deb in &debs {
        unpack_what_boots(deb, &tree)?;
    }
    keep_what_boots(&tree, &release, &offer.version, &dir)?;
    let _ = std::fs::remove_dir_all(&staging);
    cached(&name, &offer.version, &dir)
        .ok_or_else(|| format!("{} hold no vmlinuz", offer.packages().join(" ")))
}

/// Unpack from a package only the image, its config and the modules the guest loads: a
/// modules package is 100 MB, of which the guest needs 80 kB.
fn unpack_what_boots(deb: &Path, tree: &Path) -> Result<(), String> {
    let mut patterns = vec!["*/vmlinuz*".to_string(), "*/config-*".to_string()];
    patterns.extend(GUEST_MODULES.iter().map(|m| format!("*/kernel/{m}.ko*")));
    // tar names the patterns that matched nothing (a package of the new layout holds either
    // the image or the modules) and exits 2 for them: what was found is checked after.
    let script = "dpkg-deb --fsys-tarfile \"$1\" | (cd \"$2\" && shift 2 && tar -x --wildcards -f - \"$@\" 2>/dev/null); [ \"${PIPESTATUS[0]}\" = 0 ]";
    super::apt::run(
        Command::new("bash")
            .args(["-c", script, "unpack"])
            .arg(deb)
            .arg(tree)
            .args(&patterns),
        &format!("unpacking {}", deb.display()),
    )
}

/// Copy the image, the config and the modules the guest loads out of the unpacked packages
/// (`boot/` and `lib/modules/` in the old layout, `usr/lib/modules/<release>/` in the new);
/// the file `release` is written last and marks the cache entry complete.
fn keep_what_boots(tree: &Path, release: &str, version: &str, dir: &Path) -> Result<(), String> {
    let io = |e: std::io::Error| format!("caching the kernel in {}: {e}", dir.display());
    let image = [
        tree.join("boot").join(format!("vmlinuz-{release}")),
        tree.join("usr/lib/modules").join(release).join("vmlinuz"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .ok_or_else(|| {
        format!("no boot/vmlinuz-{release} nor usr/lib/modules/{release}/vmlinuz in the packages")
    })?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("modules")).map_err(io)?;
    std::fs::copy(&image, dir.join("vmlinuz")).map_err(io)?;
    let _ = std::fs::copy(
        tree.join("boot").join(format!("config-{release}")),
        dir.join("config"),
    );
    for (i, module) in GUEST_MODULES.iter().enumerate() {
        for modules_dir in ["lib/modules", "usr/lib/modules"] {
            let kernel_dir = tree.join(modules_dir).join(release).join("kernel");
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
    }
    std::fs::write(dir.join(WANTED), GUEST_MODULES.join("\n")).map_err(io)?;
    std::fs::write(dir.join("version"), version).map_err(io)?;
    std::fs::write(dir.join("release"), release).map_err(io)
}

/// The module list a cache entry was made for: an entry made for another list is made again.
const WANTED: &str = "modules.wanted";

/// The cache entry for `version` of a kernel (any version when empty), if it is complete.
fn cached(name: &str, version: &str, dir: &Path) -> Option<Kernel> {
    if std::fs::read_to_string(dir.join(WANTED)).ok()? != GUEST_MODULES.join("\n") {
        return None;
    }
    let kept = std::fs::read_to_string(dir.join("version")).ok()?;
    if !version.is_empty() && kept != version {
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
        version: name.to_string(),
        release: release.trim().to_string(),
        image: dir.join("vmlinuz"),
        modules,
    })
}

/// A kernel named by its release (`6.1.0-56-amd64`) that an earlier run left in the cache, for
/// a version the lists no longer offer.
pub fn cached_release(release: &str, cache: &Path) -> Option<Kernel> {
    let name = release.strip_suffix("-amd64")?;
    cached(name, "", &cache.join(release))
}
