//! sockconf cross-built for FreeBSD, statically, against a distribution's usr/lib: the guest's
//! init and the suite in one binary.
//!
//! `cargo build --target x86_64-unknown-freebsd` with `-C target-feature=+crt-static`, linked
//! by clang for FreeBSD with lld and the distribution as sysroot, through a small wrapper
//! script. Everything is set for this one cargo invocation only (the environment), so that
//! `cargo check --target x86_64-unknown-freebsd` elsewhere is untouched.
//!
//! The wrapper's path is the same for every distribution (cargo rebuilds every crate when the
//! linker changes); the distribution is passed in `SYSROOT_ENV`, which this crate reads with
//! `option_env!`, so that cargo relinks sockconf alone when the distribution changes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const TARGET: &str = "x86_64-unknown-freebsd";

/// The sysroot the FreeBSD binary was linked against (set for its build only).
pub const SYSROOT_ENV: &str = "SOCKCONF_FREEBSD_SYSROOT";
/// The clang the wrapper runs.
const CLANG_ENV: &str = "SOCKCONF_FREEBSD_CLANG";

/// What this binary was linked against, when it is the FreeBSD guest's: a change of
/// distribution changes this constant, and with it makes cargo relink.
#[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
pub const LINKED_AGAINST: Option<&str> = option_env!("SOCKCONF_FREEBSD_SYSROOT");

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
    let wrapper = write_wrapper(work)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The workspace this binary was built from: the cross-build is of the same source.
    let workspace = env!("CARGO_MANIFEST_DIR");
    let triple_env = TARGET.to_uppercase().replace('-', "_");
    // nice: when nothing is cached this compiles for minutes, while the host's suite runs
    // beside it and times its cases.
    let out = Command::new("nice")
        .args(["-n", "10"])
        .arg(&cargo)
        .args(["build", "--quiet", "--target", TARGET, "--bin", "sockconf"])
        .args(["--message-format", "json-render-diagnostics"])
        .current_dir(workspace)
        .env(format!("CARGO_TARGET_{triple_env}_LINKER"), &wrapper)
        .env(
            format!("CARGO_TARGET_{triple_env}_RUSTFLAGS"),
            "-C target-feature=+crt-static",
        )
        .env(SYSROOT_ENV, sysroot)
        .env(CLANG_ENV, clang)
        .env("SOCKCONF_FREEBSD_MAJOR", major.to_string())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {cargo} to cross-build for FreeBSD: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(build_failure(&stderr));
    }
    executable(&stdout)
        .ok_or_else(|| format!("cargo built for {TARGET} but named no sockconf executable"))
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
/// distribution as sysroot. Rewritten only when its text changes, so that cargo sees the
/// same linker.
fn write_wrapper(work: &Path) -> Result<PathBuf, String> {
    let io = |e: std::io::Error| {
        format!(
            "writing the FreeBSD linker wrapper in {}: {e}",
            work.display()
        )
    };
    std::fs::create_dir_all(work).map_err(io)?;
    let path = work.canonicalize().map_err(io)?.join("freebsd-cc");
    let text = format!(
        "#!/bin/sh\n# Written by sockconf matrix: links the FreeBSD guest binary (see src/matrix/freebsd/build.rs).\nexec \"${CLANG_ENV}\" --target=x86_64-unknown-freebsd\"$SOCKCONF_FREEBSD_MAJOR\" --sysroot=\"${SYSROOT_ENV}\" -fuse-ld=lld \"$@\"\n"
    );
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&path, &text).map_err(io)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
    }
    Ok(path)
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
