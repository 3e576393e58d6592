//! A FreeBSD distribution in the layout of FreeBSD's release sets: `boot/kernel/kernel` (from
//! kernel.txz), and `boot/` with the BIOS boot block and loader plus `usr/lib` with the static
//! libraries and start files (from base.txz).
//!
//! `--kernel freebsd:PATH` takes, as PATH:
//! - a directory holding that tree (`boot/`, `usr/lib/`);
//! - a directory holding a release's `kernel.txz` and `base.txz`, of which only what the
//!   column needs is unpacked;
//! - a tarball of such a tree (ours: `freebsd-14-amd64.tar.xz`, one top directory).
//!
//! Tarballs are unpacked (by `tar`, which knows xz) into the cache once; an unpacked copy is
//! reused while its source keeps its size and modification time.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Which of FreeBSD's BIOS loaders the distribution has. Both are FreeBSD's `loader(8)`,
/// with another interpreter for its configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loader {
    /// `boot/loader_simp`: the simple interpreter, which runs `/boot/loader.rc`. Preferred
    /// where it exists: no menu, no scripts to read.
    Simple,
    /// `boot/loader` with `boot/lua/`: reads `/boot/defaults/loader.conf` and then
    /// `/boot/loader.conf`. What a release's base.txz boots with by default.
    Lua,
}

/// A distribution ready to use: its tree unpacked, its loader and kernel release known.
#[derive(Clone, Debug)]
pub struct Dist {
    /// The unpacked tree: what the ISO takes its boot files from, and the sysroot the guest
    /// binary links against.
    pub root: PathBuf,
    pub loader: Loader,
    /// What `uname -r` will say (`14.0-STABLE`), read from the kernel's version string.
    pub release: String,
}

impl Dist {
    pub fn kernel(&self) -> PathBuf {
        self.root.join("boot/kernel/kernel")
    }

    /// The loader binary the ISO boots as `/boot/loader`.
    pub fn loader_binary(&self) -> PathBuf {
        self.root.join(match self.loader {
            Loader::Simple => "boot/loader_simp",
            Loader::Lua => "boot/loader",
        })
    }
}

/// Where to get a distribution from, for the line that says one is missing.
pub const HOW_TO_GET: &str = "a FreeBSD distribution is a directory holding a release's kernel.txz and base.txz (from a FreeBSD release's amd64 distribution sets), or a directory or tarball in their layout (boot/kernel/kernel, boot/cdboot, boot/loader_simp or boot/loader with boot/lua, usr/lib)";

/// What is taken from a release's base.txz: the boot block, both loaders and the Lua
/// loader's scripts and defaults, the device hints, and what a static program links against.
const FROM_BASE: &[&str] = &[
    "boot/cdboot",
    "boot/loader",
    "boot/loader_simp",
    "boot/lua",
    "boot/defaults",
    "boot/device.hints",
    "usr/lib/*.a",
    "usr/lib/*.o",
];
const FROM_KERNEL: &[&str] = &["boot/kernel/kernel"];

/// Open the distribution at `path`, unpacking it under `cache` if it is packed. The error is
/// one line saying what is wrong with it.
pub fn open(path: &Path, cache: &Path) -> Result<Dist, String> {
    let shown = path.display();
    let root = if path.is_dir() && path.join("boot/kernel/kernel").is_file() {
        path.to_path_buf()
    } else if path.is_dir() && path.join("kernel.txz").is_file() {
        if !path.join("base.txz").is_file() {
            return Err(format!(
                "{shown} has kernel.txz but no base.txz (the boot loader and the libraries the guest links against are in base.txz)"
            ));
        }
        unpack_sets(path, cache)?
    } else if path.is_file() {
        unpack_tree(path, cache)?
    } else if path.exists() {
        return Err(format!(
            "{shown} is not a FreeBSD distribution: no boot/kernel/kernel, no kernel.txz; {HOW_TO_GET}"
        ));
    } else {
        return Err(format!("{shown}: no such file or directory; {HOW_TO_GET}"));
    };
    let root = root
        .canonicalize()
        .map_err(|e| format!("{}: {e}", root.display()))?;
    check_tree(&root)
}

/// Which loader a tree has, and whether it has the rest a column needs.
fn check_tree(root: &Path) -> Result<Dist, String> {
    let missing = |what: &str| format!("the FreeBSD distribution {} has no {what}", root.display());
    for need in ["boot/kernel/kernel", "boot/cdboot"] {
        if !root.join(need).is_file() {
            return Err(missing(need));
        }
    }
    let loader = if root.join("boot/loader_simp").is_file() {
        Loader::Simple
    } else if root.join("boot/loader").is_file() && root.join("boot/lua/loader.lua").is_file() {
        Loader::Lua
    } else {
        return Err(missing(
            "loader (boot/loader_simp, or boot/loader with boot/lua/loader.lua)",
        ));
    };
    for need in ["usr/lib/libc.a", "usr/lib/crt1.o"] {
        if !root.join(need).is_file() {
            return Err(missing(&format!(
                "{need} (the guest binary is linked statically against its usr/lib)"
            )));
        }
    }
    let kernel = std::fs::read(root.join("boot/kernel/kernel"))
        .map_err(|e| format!("{}/boot/kernel/kernel: {e}", root.display()))?;
    let release = kernel_release(&kernel).ok_or_else(|| {
        format!(
            "{}/boot/kernel/kernel has no FreeBSD version string: not a FreeBSD kernel",
            root.display()
        )
    })?;
    Ok(Dist {
        root: root.to_path_buf(),
        loader,
        release,
    })
}

/// The release in a kernel's `@(#)FreeBSD 14.0-STABLE #0 ...` version string (sys/conf/newvers.sh),
/// which is also what `uname -r` prints.
pub fn kernel_release(kernel: &[u8]) -> Option<String> {
    const MARK: &[u8] = b"@(#)FreeBSD ";
    let at = kernel.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    let release: String = kernel[at..]
        .iter()
        .take_while(|b| b.is_ascii_graphic())
        .map(|b| *b as char)
        .collect();
    (!release.is_empty()).then_some(release)
}

/// The cache entry for `source`, and the stamp that says which source it was unpacked from.
fn cache_entry(source: &Path, cache: &Path) -> Result<(PathBuf, String), String> {
    let meta = std::fs::metadata(source).map_err(|e| format!("{}: {e}", source.display()))?;
    let canonical = source
        .canonicalize()
        .map_err(|e| format!("{}: {e}", source.display()))?;
    let name: String = canonical
        .file_name()
        .map_or("dist".into(), |n| n.to_string_lossy().into_owned())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let stamp = format!("{}\n{}\n{modified}\n", canonical.display(), meta.len());
    Ok((cache.join(name), stamp))
}

const STAMP: &str = ".unpacked-from";

fn cached(entry: &Path, stamp: &str) -> bool {
    std::fs::read_to_string(entry.join(STAMP)).is_ok_and(|s| s == stamp)
}

/// A tarball of a tree: unpacked whole (it is small); its single top directory, if it has
/// one, is the tree.
fn unpack_tree(tarball: &Path, cache: &Path) -> Result<PathBuf, String> {
    let (entry, stamp) = cache_entry(tarball, cache)?;
    if !cached(&entry, &stamp) {
        let staging = fresh_dir(&entry.with_extension("staging"))?;
        tar(tarball, &staging, &[])?;
        finish(&staging, &entry, &stamp)?;
    }
    tree_in(&entry)
}

/// A release's kernel.txz and base.txz: only what the column needs is unpacked.
fn unpack_sets(dir: &Path, cache: &Path) -> Result<PathBuf, String> {
    let (entry, stamp) = cache_entry(&dir.join("base.txz"), cache)?;
    let (_, kernel_stamp) = cache_entry(&dir.join("kernel.txz"), cache)?;
    let stamp = stamp + &kernel_stamp;
    let entry = entry.with_file_name(format!(
        "{}-sets",
        dir.canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "release".into())
    ));
    if !cached(&entry, &stamp) {
        let staging = fresh_dir(&entry.with_extension("staging"))?;
        tar(&dir.join("kernel.txz"), &staging, FROM_KERNEL)?;
        tar(&dir.join("base.txz"), &staging, FROM_BASE)?;
        finish(&staging, &entry, &stamp)?;
    }
    Ok(entry)
}

fn fresh_dir(dir: &Path) -> Result<PathBuf, String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir.to_path_buf())
}

/// The staging directory becomes the cache entry, stamped last.
fn finish(staging: &Path, entry: &Path, stamp: &str) -> Result<(), String> {
    let io = |e: std::io::Error| format!("{}: {e}", entry.display());
    let _ = std::fs::remove_dir_all(entry);
    std::fs::rename(staging, entry).map_err(io)?;
    std::fs::write(entry.join(STAMP), stamp).map_err(io)
}

/// The tree in an unpacked tarball: the entry itself, or its only directory.
fn tree_in(entry: &Path) -> Result<PathBuf, String> {
    if entry.join("boot").is_dir() {
        return Ok(entry.to_path_buf());
    }
    let dirs: Vec<PathBuf> = std::fs::read_dir(entry)
        .map_err(|e| format!("{}: {e}", entry.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    match dirs.as_slice() {
        [only] if only.join("boot").is_dir() => Ok(only.clone()),
        _ => Err(format!(
            "the tarball unpacked in {} holds no boot/ (nor one directory with boot/ in it); {HOW_TO_GET}",
            entry.display()
        )),
    }
}

/// Unpack `members` (GNU tar wildcards, matched after any `./`; all when empty) of a
/// tarball. Release sets name their members `./boot/...`.
fn tar(tarball: &Path, into: &Path, members: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new("tar");
    cmd.arg("-xf").arg(tarball).arg("-C").arg(into);
    if !members.is_empty() {
        // A set lacks some of them (a release without loader_simp, say); tar names those and
        // exits 2, and check_tree judges what came out.
        cmd.args(["--wildcards", "--no-anchored"]).args(members);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run tar to unpack {}: {e}", tarball.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let real_error = stderr
        .lines()
        .find(|l| !l.contains("Not found in archive") && !l.contains("Exiting with failure"));
    match (out.status.success(), real_error) {
        (true, _) => Ok(()),
        (false, None) if !members.is_empty() => Ok(()),
        (false, said) => Err(format!(
            "unpacking {}: tar {}: {}",
            tarball.display(),
            out.status,
            said.unwrap_or("").trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sockconf-freebsd-dist-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A tree with the files a column needs; the kernel is a few bytes around its version.
    fn tree(root: &Path, loader: Loader) {
        for dir in ["boot/kernel", "boot/lua", "usr/lib"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::fs::write(
            root.join("boot/kernel/kernel"),
            b"\x7fELF...@(#)FreeBSD 14.1-RELEASE #0 releng/14.1-n267679\0...",
        )
        .unwrap();
        let mut files = vec!["boot/cdboot", "usr/lib/libc.a", "usr/lib/crt1.o"];
        files.extend(match loader {
            Loader::Simple => ["boot/loader_simp"].as_slice(),
            Loader::Lua => ["boot/loader", "boot/lua/loader.lua"].as_slice(),
        });
        for file in files {
            std::fs::write(root.join(file), b"x").unwrap();
        }
    }

    #[test]
    fn the_release_is_read_from_the_kernels_version_string() {
        assert_eq!(
            kernel_release(b"..\0@(#)FreeBSD 14.0-STABLE #0 n2: Mon\0").as_deref(),
            Some("14.0-STABLE")
        );
        assert_eq!(kernel_release(b"Linux version 6.1.0"), None);
    }

    #[test]
    fn a_tree_names_its_loader_and_release() {
        let dir = scratch("trees");
        for loader in [Loader::Simple, Loader::Lua] {
            let root = dir.join(format!("{loader:?}"));
            tree(&root, loader);
            let dist = open(&root, &dir.join("cache")).unwrap();
            assert_eq!(dist.loader, loader);
            assert_eq!(dist.release, "14.1-RELEASE");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_tarball_with_one_top_directory_is_unpacked_once() {
        let dir = scratch("tarball");
        tree(&dir.join("src/freebsd-14-amd64"), Loader::Simple);
        let tarball = dir.join("freebsd-14-amd64.tar.gz");
        let made = Command::new("tar")
            .arg("-czf")
            .arg(&tarball)
            .arg("-C")
            .arg(dir.join("src"))
            .arg("freebsd-14-amd64")
            .status()
            .unwrap();
        assert!(made.success());
        let cache = dir.join("cache");
        let dist = open(&tarball, &cache).unwrap();
        assert!(dist.kernel().is_file(), "{dist:?}");
        // Unpacked once: a second open finds the stamp and does not unpack again.
        std::fs::write(dist.root.join("marker"), b"").unwrap();
        let again = open(&tarball, &cache).unwrap();
        assert!(again.root.join("marker").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn release_sets_give_only_what_the_column_needs() {
        let dir = scratch("sets");
        let src = dir.join("src");
        tree(&src, Loader::Lua);
        std::fs::write(src.join("usr/lib/unrelated.so"), b"x").unwrap();
        let sets = dir.join("14.1-RELEASE");
        std::fs::create_dir_all(&sets).unwrap();
        for (set, members) in [
            ("kernel.txz", &["./boot/kernel"][..]),
            (
                "base.txz",
                &["./boot/cdboot", "./boot/loader", "./boot/lua", "./usr"][..],
            ),
        ] {
            let made = Command::new("tar")
                .arg("-cJf")
                .arg(sets.join(set))
                .arg("-C")
                .arg(&src)
                .args(members)
                .status()
                .unwrap();
            assert!(made.success());
        }
        let dist = open(&sets, &dir.join("cache")).unwrap();
        assert_eq!(dist.loader, Loader::Lua);
        assert!(dist.root.join("boot/lua/loader.lua").is_file());
        assert!(!dist.root.join("usr/lib/unrelated.so").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn what_is_not_a_distribution_says_so_in_one_line() {
        let dir = scratch("broken");
        let e = open(&dir.join("nothing-here"), &dir).unwrap_err();
        assert!(
            e.contains("no such file or directory") && e.contains("kernel.txz"),
            "{e}"
        );
        let e = open(&dir, &dir).unwrap_err();
        assert!(e.contains("not a FreeBSD distribution"), "{e}");
        let garbage = dir.join("garbage.tar.xz");
        std::fs::write(&garbage, b"not a tarball").unwrap();
        let e = open(&garbage, &dir.join("cache")).unwrap_err();
        assert!(e.starts_with("unpacking"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
