//! The VM's whole userland, written as a newc cpio archive (what the kernel unpacks into its
//! initial rootfs): the static sockconf as /init, the directories it mounts on, the console
//! node the kernel opens for PID 1, and the modules to load.

use super::MODULES_DIR;
use cpio::newc::{trailer, Builder, ModeFileType};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Write the archive for `init` (a static sockconf) and `modules` to `out`.
pub fn build(init: &Path, modules: &[PathBuf], out: &Path) -> std::io::Result<()> {
    let mut archive = std::io::BufWriter::new(std::fs::File::create(out)?);
    let mut ino = 0;
    let mut next = |name: &str| {
        ino += 1;
        Builder::new(name).ino(ino).nlink(1)
    };
    for dir in [
        "dev",
        "proc",
        "sys",
        "tmp",
        MODULES_DIR.trim_start_matches('/'),
    ] {
        next(dir)
            .mode(0o755)
            .set_mode_file_type(ModeFileType::Directory)
            .write(&mut archive, 0)
            .finish()?;
    }
    // The kernel opens /dev/console as PID 1's stdin, stdout and stderr before devtmpfs is
    // mounted over /dev, so the node must be in the archive.
    next("dev/console")
        .mode(0o600)
        .set_mode_file_type(ModeFileType::Char)
        .rdev_major(5)
        .rdev_minor(1)
        .write(&mut archive, 0)
        .finish()?;
    add_file(next("init").mode(0o755), init, &mut archive)?;
    for module in modules {
        let name = module.file_name().expect("a module is a file");
        let path = format!(
            "{}/{}",
            MODULES_DIR.trim_start_matches('/'),
            name.to_string_lossy()
        );
        add_file(next(&path).mode(0o644), module, &mut archive)?;
    }
    trailer(&mut archive)?;
    archive.flush()
}

fn add_file(entry: Builder, from: &Path, archive: &mut impl Write) -> std::io::Result<()> {
    let mut file = std::fs::File::open(from)?;
    let size = u32::try_from(file.metadata()?.len())
        .map_err(|_| std::io::Error::other(format!("{} is over 4 GiB", from.display())))?;
    let mut writer = entry
        .set_mode_file_type(ModeFileType::Regular)
        .write(archive, size);
    std::io::copy(&mut file, &mut writer)?;
    writer.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpio::newc::Reader;

    #[test]
    fn the_archive_holds_init_the_console_and_the_modules() {
        let dir = std::env::temp_dir().join(format!("sockconf-initramfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let init = dir.join("init-binary");
        let module = dir.join("00-inet_diag.ko.xz");
        std::fs::write(&init, b"\x7fELF pretend").unwrap();
        std::fs::write(&module, b"pretend module").unwrap();
        let out = dir.join("initramfs.cpio");
        build(&init, &[module], &out).unwrap();

        let mut data = std::io::Cursor::new(std::fs::read(&out).unwrap());
        let mut seen = vec![];
        loop {
            let reader = Reader::new(&mut data).unwrap();
            if reader.entry().is_trailer() {
                break;
            }
            let e = reader.entry();
            seen.push((e.name().to_string(), e.mode(), e.file_size()));
            reader.finish().unwrap();
        }
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(seen.contains(&("init".into(), 0o100755, 12)), "{seen:?}");
        assert!(
            seen.contains(&("dev/console".into(), 0o020600, 0)),
            "{seen:?}"
        );
        assert!(
            seen.contains(&("modules/00-inet_diag.ko.xz".into(), 0o100644, 14)),
            "{seen:?}"
        );
    }
}
