//! sockconf cross-built for FreeBSD, statically, against a distribution's usr/lib: the guest's
//! init and the suite in one binary.
//!
//! `cargo build --target x86_64-unknown-freebsd` with `-C target-feature=+crt-static`, linked
//! by clang for FreeBSD with lld and the distribution as sysroot, through a small wrapper
//! script. Everything is set for this one cargo invocation only (the environment), so that
//! `cargo check --target x86_64-unknown-freebsd` elsewhere is untouched.
//!
//! The wrapper's path is the same for every distribution (cargo rebuilds every crate when the
//! linker changes); the distribution is passed in `SYSROOT_ENV`, and what the link depends on
//! (the distribution and the wrapper's text) in `LINK_ENV`, which this crate reads with
//! `option_env!`, so that cargo relinks sockconf alone when either changes.
//!
//! The binary must carry FreeBSD's ABI note (NT_FREEBSD_ABI_TAG, the `__FreeBSD_version` it
//! was built for). Without it the kernel runs it with `p_osrel` 0, as a binary from before
//! every compatibility switch, and the suite would observe old behaviour: kern_shutdown()
//! (sys/kern/uipc_syscalls.c) turns ENOTCONN into 0 for `p_osrel < P_OSREL_SHUTDOWN_ENOTCONN`,
//! for one. crt1.o has the note in a COMDAT group (lib/csu/common/crtbrand.S), and lld's
//! `--gc-sections`, which rustc passes, drops notes in groups: the wrapper ends the command
//! line with `--no-gc-sections`, and the build checks that the note is there.

use crate::interrupt::SpawnOwned;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const TARGET: &str = "x86_64-unknown-freebsd";

/// The sysroot the FreeBSD binary is linked against (set for its build only).
pub const SYSROOT_ENV: &str = "SOCKCONF_FREEBSD_SYSROOT";
/// What the link depends on, for cargo to see: the sysroot and the wrapper's text.
const LINK_ENV: &str = "SOCKCONF_FREEBSD_LINK";
/// The clang the wrapper runs.
const CLANG_ENV: &str = "SOCKCONF_FREEBSD_CLANG";

/// What this binary was linked against and how, when it is the FreeBSD guest's: a change of
/// distribution or wrapper changes this constant, and with it makes cargo relink.
#[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
pub const LINKED_AGAINST: Option<&str> = option_env!("SOCKCONF_FREEBSD_LINK");

/// Debian names its clang by version; `clang` is whatever the machine has.
const CLANGS: &[&str] = &["clang-16", "clang"];
const LLDS: &[&str] = &["ld.lld-16", "ld.lld"];

/// Build sockconf for FreeBSD against `sysroot` (a distribution's unpacked tree) whose kernel
/// is FreeBSD `major`; `work` keeps the linker wrapper. The static binary's path, or one line
/// saying what is missing or what failed.
pub fn cross_build(sysroot: &Path, major: u32, work: &Path) -> Result<PathBuf, String> {
    let clang = first_runnable(CLANGS).ok_or(
        "cannot cross-build for FreeBSD: no clang-16 (nor clang) to link with; install clang-16 and lld-16 (Debian: apt-get install clang-16 lld-16), or use `make matrix`, which does",
    )?;
    if first_runnable(LLDS).is_none() {
        return Err("cannot cross-build for FreeBSD: no ld.lld-16 (nor ld.lld); install lld-16 (Debian: apt-get install lld-16), or use `make matrix`, which does".into());
    }
    let (wrapper, wrapper_text) = write_wrapper(work)?;
    let link = format!(
        "{} (linker wrapper {:016x})",
        sysroot.display(),
        fnv1a(wrapper_text.as_bytes())
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The workspace this binary was built from: the cross-build is of the same source.
    let workspace = env!("CARGO_MANIFEST_DIR");
    let triple_env = TARGET.to_uppercase().replace('-', "_");
    // nice: when nothing is cached this compiles for minutes, while the host's suite runs
    // beside it and times its cases.
    let out = Command::new("nice")
        .args(["-n", "10"])
        .arg(&cargo)
        // The Linux VMs' init profile: optimised, since qemu emulates every instruction.
        .args(["build", "--quiet", "--profile", "guest", "--target", TARGET])
        .args(["--bin", "sockconf"])
        .args(["--message-format", "json-render-diagnostics"])
        .current_dir(workspace)
        .env(format!("CARGO_TARGET_{triple_env}_LINKER"), &wrapper)
        .env(
            format!("CARGO_TARGET_{triple_env}_RUSTFLAGS"),
            "-C target-feature=+crt-static",
        )
        .env(SYSROOT_ENV, sysroot)
        .env(LINK_ENV, &link)
        .env(CLANG_ENV, clang)
        .env("SOCKCONF_FREEBSD_MAJOR", major.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Ended with this process and by Ctrl-C (crate::interrupt): a build takes minutes.
        .spawn_owned()
        .and_then(|cargo| cargo.wait_with_output())
        .map_err(|e| format!("cannot run {cargo} to cross-build for FreeBSD: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(build_failure(&stderr));
    }
    let binary = executable(&stdout)
        .ok_or_else(|| format!("cargo built for {TARGET} but named no sockconf executable"))?;
    let elf = std::fs::read(&binary).map_err(|e| format!("{}: {e}", binary.display()))?;
    match freebsd_abi_version(&elf) {
        Some(_) => Ok(binary),
        None => Err(format!(
            "{} carries no FreeBSD ABI note (NT_FREEBSD_ABI_TAG): FreeBSD would run it as a binary from before every compatibility switch",
            binary.display()
        )),
    }
}

/// FNV-1a, 64 bits: a hash that stays the same from one build of sockconf to the next.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The `__FreeBSD_version` in an ELF64 little-endian executable's NT_FREEBSD_ABI_TAG note
/// (sys/sys/elf_common.h: owner "FreeBSD", type 1, a 4-byte version), found through its
/// PT_NOTE program headers as the kernel's image activator finds it.
pub fn freebsd_abi_version(elf: &[u8]) -> Option<u32> {
    const PT_NOTE: u32 = 4;
    const NT_FREEBSD_ABI_TAG: u32 = 1;
    let u16_at = |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| -> Option<usize> {
        usize::try_from(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?)).ok()
    };
    // ELF64 (class 2), little-endian (data 1).
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let (phoff, phentsize, phnum) = (u64_at(0x20)?, usize::from(u16_at(0x36)?), u16_at(0x38)?);
    let align4 = |n: usize| n.div_ceil(4) * 4;
    for i in 0..usize::from(phnum) {
        let ph = phoff + i * phentsize;
        if u32_at(ph)? != PT_NOTE {
            continue;
        }
        let (mut at, end) = (u64_at(ph + 8)?, u64_at(ph + 8)? + u64_at(ph + 32)?);
        while at + 12 <= end {
            let (namesz, descsz, kind) = (
                u32_at(at)? as usize,
                u32_at(at + 4)? as usize,
                u32_at(at + 8)?,
            );
            let name = elf.get(at + 12..at + 12 + namesz)?;
            let desc_at = at + 12 + align4(namesz);
            if name == b"FreeBSD\0" && kind == NT_FREEBSD_ABI_TAG && descsz == 4 {
                return u32_at(desc_at);
            }
            at = desc_at + align4(descsz);
        }
    }
    None
}

/// One line for a failed build: a missing std is the usual one on a fresh machine.
fn build_failure(stderr: &str) -> String {
    if stderr.contains("can't find crate for `std`")
        || stderr.contains("target may not be installed")
    {
        return format!("cannot cross-build for FreeBSD: the Rust std for {TARGET} is not installed (rustup target add {TARGET}), or use `make matrix`, which does");
    }
    let said = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("error"))
        .or_else(|| stderr.lines().rfind(|l| !l.trim().is_empty()))
        .unwrap_or("(cargo said nothing)");
    format!(
        "cross-building sockconf for FreeBSD failed: {}",
        said.trim()
    )
}

/// The executable of the `sockconf` binary among cargo's JSON messages.
fn executable(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "sockconf")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

/// The linker: clang for FreeBSD of the distribution's major release, with lld and the
/// distribution as sysroot, keeping every section (see the ABI note above). Rewritten only
/// when its text changes, so that cargo sees the same linker. Its path and text.
fn write_wrapper(work: &Path) -> Result<(PathBuf, String), String> {
    let io = |e: std::io::Error| {
        format!(
            "writing the FreeBSD linker wrapper in {}: {e}",
            work.display()
        )
    };
    std::fs::create_dir_all(work).map_err(io)?;
    let path = work.canonicalize().map_err(io)?.join("freebsd-cc");
    let text = format!(
        "#!/bin/sh\n# Written by sockconf matrix: links the FreeBSD guest binary (see src/matrix/freebsd/build.rs).\nexec \"${CLANG_ENV}\" --target=x86_64-unknown-freebsd\"$SOCKCONF_FREEBSD_MAJOR\" --sysroot=\"${SYSROOT_ENV}\" -fuse-ld=lld \"$@\" -Wl,--no-gc-sections\n"
    );
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&path, &text).map_err(io)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
    }
    Ok((path, text))
}

fn first_runnable(names: &[&'static str]) -> Option<&'static str> {
    names.iter().copied().find(|name| {
        Command::new(name)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_executable_is_found_among_cargos_messages() {
        let messages = r#"{"reason":"compiler-artifact","target":{"name":"harness","kind":["lib"]},"executable":null}
{"reason":"compiler-artifact","target":{"name":"sockconf","kind":["bin"]},"executable":"/w/target/x86_64-unknown-freebsd/debug/sockconf"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            executable(messages),
            Some(PathBuf::from(
                "/w/target/x86_64-unknown-freebsd/debug/sockconf"
            ))
        );
        assert_eq!(executable(r#"{"reason":"build-finished"}"#), None);
    }

    /// An ELF64 header, one PT_NOTE program header, and its notes.
    fn elf_with_notes(notes: &[(&[u8], u32, &[u8])]) -> Vec<u8> {
        let mut body = vec![];
        for (name, kind, desc) in notes {
            body.extend((name.len() as u32).to_le_bytes());
            body.extend((desc.len() as u32).to_le_bytes());
            body.extend(kind.to_le_bytes());
            body.extend(*name);
            body.resize(body.len().div_ceil(4) * 4, 0);
            body.extend(*desc);
            body.resize(body.len().div_ceil(4) * 4, 0);
        }
        let mut elf = vec![0u8; 64 + 56];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        elf[64..68].copy_from_slice(&4u32.to_le_bytes());
        elf[72..80].copy_from_slice(&120u64.to_le_bytes());
        elf[96..104].copy_from_slice(&(body.len() as u64).to_le_bytes());
        elf.extend(body);
        elf
    }

    #[test]
    fn the_abi_note_is_found_among_freebsds_notes() {
        let feature_ctl: (&[u8], u32, &[u8]) = (b"FreeBSD\0", 4, &[0; 4]);
        let abi_tag: (&[u8], u32, &[u8]) = (b"FreeBSD\0", 1, &1_400_507u32.to_le_bytes());
        let with = elf_with_notes(&[feature_ctl, abi_tag]);
        assert_eq!(freebsd_abi_version(&with), Some(1_400_507));
        // What lld's --gc-sections leaves of crt1.o's notes: the feature control only.
        let without = elf_with_notes(&[feature_ctl]);
        assert_eq!(freebsd_abi_version(&without), None);
        assert_eq!(freebsd_abi_version(b"#!/bin/sh\n"), None);
    }

    #[test]
    fn a_missing_std_is_named_with_its_remedy() {
        let e = build_failure("error[E0463]: can't find crate for `std`\n  = note: the `x86_64-unknown-freebsd` target may not be installed");
        assert!(
            e.contains("rustup target add x86_64-unknown-freebsd"),
            "{e}"
        );
        let e = build_failure("   Compiling x\nerror: linking with `cc` failed: exit status: 1\n");
        assert_eq!(e, "cross-building sockconf for FreeBSD failed: error: linking with `cc` failed: exit status: 1");
    }
}
