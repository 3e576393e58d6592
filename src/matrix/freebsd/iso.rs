//! The FreeBSD VM's CD: an ISO 9660 image with Rock Ridge (names and exec bits kept), whose El
//! Torito boot image is the distribution's `boot/cdboot`, written by xorriso.
//!
//! qemu cannot load a FreeBSD kernel itself, so the CD boots FreeBSD's own loader, which loads
//! the kernel and mounts the CD as root; the kernel then runs the static sockconf as
//! /sbin/init. The CD holds:
//!
//! | path | what |
//! |---|---|
//! | `boot/cdboot` | the BIOS boot block (El Torito, no emulation) |
//! | `boot/loader` | the distribution's loader (loader_simp, or the Lua one) |
//! | `boot/loader.rc` or `boot/loader.conf` (+ `boot/lua`, `boot/defaults`) | serial console, root on the CD |
//! | `boot/kernel/kernel` | the kernel |
//! | `sbin/init` | the static sockconf |
//! | `etc/sockconf-guest.conf` | the guest's settings |
//! | `dev/`, `tmp/` | where devfs mounts itself, and the guest mounts a tmpfs |
//!
//! Large files (the kernel, sockconf) are grafted onto the image from where they lie, not
//! copied.

use super::dist::{Dist, Loader};
use super::guest;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const XORRISO: &str = "xorriso";

/// The root file system, as the kernel mounts it.
pub const ROOT_DEVICE: &str = "cd9660:/dev/cd0";

/// Kernel tunables for both loaders: the root on the CD; and no TSC calibration, which under
/// TCG fails its statistical method and falls back to a second-long one (sys/x86/x86/tsc.c)
/// for a timecounter the kernel does not pick anyway (HPET ranks above TSC-low there).
const TUNABLES: &[(&str, &str)] = &[
    ("vfs.root.mountfrom", ROOT_DEVICE),
    ("machdep.disable_tsc_calibration", "1"),
];

/// The simple loader's script: the first serial port is the console (`-h`), the CD the root.
pub fn loader_rc() -> String {
    let mut rc = String::from("set console=comconsole\n");
    for (name, value) in TUNABLES {
        rc += &format!("set {name}={value}\n");
    }
    rc + "load /boot/kernel/kernel\nboot -h\n"
}

/// The Lua loader's settings (read after `/boot/defaults/loader.conf`): the same, with no
/// menu and no countdown.
pub fn loader_conf() -> String {
    let mut conf = String::from(
        "console=\"comconsole\"\nboot_serial=\"YES\"\nautoboot_delay=\"-1\"\nbeastie_disable=\"YES\"\n",
    );
    for (name, value) in TUNABLES {
        conf += &format!("{name}=\"{value}\"\n");
    }
    conf
}

/// Whether xorriso can be started: one clear line if not.
pub fn check_xorriso() -> Result<(), String> {
    match Command::new(XORRISO)
        .arg("-version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        _ => Err(format!("cannot start {XORRISO} to write the FreeBSD VM's CD; install it (Debian: apt-get install xorriso), or use `make matrix`, which does")),
    }
}

/// What goes on the CD: (path on the CD, file or directory on this machine).
pub fn contents(
    dist: &Dist,
    init: &Path,
    settings: &guest::Settings,
    staging: &Path,
) -> std::io::Result<Vec<(String, PathBuf)>> {
    let _ = std::fs::remove_dir_all(staging);
    std::fs::create_dir_all(staging.join("empty"))?;
    let mut grafts = vec![
        ("boot/cdboot".to_string(), dist.root.join("boot/cdboot")),
        ("boot/loader".to_string(), dist.loader_binary()),
        ("boot/kernel/kernel".to_string(), dist.kernel()),
        ("sbin/init".to_string(), init.to_path_buf()),
        ("dev".to_string(), staging.join("empty")),
        ("tmp".to_string(), staging.join("empty")),
    ];
    let settings_file = staging.join("sockconf-guest.conf");
    std::fs::write(&settings_file, settings.render())?;
    grafts.push((
        guest::SETTINGS.trim_start_matches('/').to_string(),
        settings_file,
    ));
    match dist.loader {
        Loader::Simple => {
            let rc = staging.join("loader.rc");
            std::fs::write(&rc, loader_rc())?;
            grafts.push(("boot/loader.rc".into(), rc));
        }
        Loader::Lua => {
            let conf = staging.join("loader.conf");
            std::fs::write(&conf, loader_conf())?;
            grafts.push(("boot/loader.conf".into(), conf));
            for dir in ["boot/lua", "boot/defaults", "boot/device.hints"] {
                if dist.root.join(dir).exists() {
                    grafts.push((dir.into(), dist.root.join(dir)));
                }
            }
        }
    }
    Ok(grafts)
}

/// Write the image to `out`.
pub fn write(grafts: &[(String, PathBuf)], out: &Path) -> Result<(), String> {
    let _ = std::fs::remove_file(out);
    let mut cmd = Command::new(XORRISO);
    cmd.args(["-as", "mkisofs", "-quiet", "-R", "-V", "SOCKCONF"])
        .args(["-b", "boot/cdboot", "-no-emul-boot"])
        .arg("-o")
        .arg(out)
        .arg("-graft-points");
    for (on_cd, here) in grafts {
        // mkisofs's graft points escape `=` and `\` in names with a backslash.
        let escape = |s: &str| s.replace('\\', "\\\\").replace('=', "\\=");
        cmd.arg(format!(
            "/{}={}",
            escape(on_cd),
            escape(&here.to_string_lossy())
        ));
    }
    let out_ = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {XORRISO}: {e}"))?;
    if out_.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out_.stderr);
        let said = stderr
            .lines()
            .find(|l| l.contains("FAILURE") || l.contains("SORRY"))
            .or_else(|| stderr.lines().rfind(|l| !l.trim().is_empty()))
            .unwrap_or("");
        Err(format!(
            "writing the FreeBSD CD {}: {XORRISO} {}: {}",
            out.display(),
            out_.status,
            said.trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_loaders_boot_the_kernel_on_the_serial_console_with_the_cd_as_root() {
        let rc = loader_rc();
        assert!(rc.contains("set console=comconsole\n"));
        assert!(rc.contains("set vfs.root.mountfrom=cd9660:/dev/cd0\n"));
        assert!(rc.ends_with("load /boot/kernel/kernel\nboot -h\n"));
        let conf = loader_conf();
        assert!(conf.contains("console=\"comconsole\"\n"));
        assert!(conf.contains("vfs.root.mountfrom=\"cd9660:/dev/cd0\"\n"));
    }

    /// The image really is ISO 9660 with the boot block as its El Torito image and sockconf
    /// as an executable /sbin/init (xorriso reads it back).
    #[test]
    fn the_image_holds_the_boot_files_and_init() {
        if check_xorriso().is_err() {
            eprintln!("skipped: no xorriso here");
            return;
        }
        let dir = std::env::temp_dir().join(format!("sockconf-iso-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("dist");
        for d in ["boot/kernel", "usr/lib"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in ["boot/cdboot", "boot/loader_simp", "boot/kernel/kernel"] {
            std::fs::write(root.join(f), vec![0u8; 2048]).unwrap();
        }
        let init = dir.join("sockconf");
        std::fs::write(&init, b"\x7fELF pretend").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755)).unwrap();
        let dist = Dist {
            root: root.clone(),
            loader: Loader::Simple,
            release: "14.0-STABLE".into(),
        };
        let settings = guest::Settings {
            jobs: 2,
            allow_host_sysctl: true,
        };
        let grafts = contents(&dist, &init, &settings, &dir.join("staging")).unwrap();
        let iso = dir.join("x.iso");
        write(&grafts, &iso).unwrap();
        let listing = Command::new(XORRISO)
            .args(["-indev"])
            .arg(&iso)
            .args(["-report_el_torito", "plain", "-lsl", "/sbin", "/boot", "/"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&listing.stdout).into_owned()
            + &String::from_utf8_lossy(&listing.stderr);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(text.contains("/boot/cdboot"), "{text}");
        assert!(
            text.contains("-rwxr-xr-x") && text.contains("'init'"),
            "{text}"
        );
        for name in [
            "'loader'",
            "'loader.rc'",
            "'kernel'",
            "'dev'",
            "'tmp'",
            "'etc'",
        ] {
            assert!(text.contains(name), "{name} missing: {text}");
        }
    }
}
