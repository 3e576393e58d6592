//! The README's tables of what each case expects per OS are `sockconf explain --format
//! markdown`, written between two marker lines. This fails when they no longer match the
//! catalogue; `make readme` (SOCKCONF_WRITE_README=1) writes them again.
mod common;

use common::sockconf;
use rstest::rstest;
use std::process::Command;

const BEGIN: &str = "<!-- BEGIN sockconf explain --format markdown -->\n";
const END: &str = "<!-- END sockconf explain --format markdown -->";
const WRITE_ENV: &str = "SOCKCONF_WRITE_README";

#[rstest]
fn readme_tables_match_the_catalogue(mut sockconf: Command) {
    let out = sockconf
        .args(["explain", "--format", "markdown"])
        .output()
        .expect("start sockconf");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tables = String::from_utf8(out.stdout).expect("UTF-8");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).expect("README.md");
    let start = readme.find(BEGIN).expect("the README has the BEGIN marker") + BEGIN.len();
    let end = readme.find(END).expect("the README has the END marker");
    let wanted = format!("{tables}\n");
    if readme[start..end] == wanted {
        return;
    }
    if std::env::var(WRITE_ENV).as_deref() == Ok("1") {
        let written = format!("{}{wanted}{}", &readme[..start], &readme[end..]);
        std::fs::write(path, written).expect("write README.md");
        return;
    }
    panic!(
        "the README's tables are not `sockconf explain --format markdown`: run `make readme` \
         ({WRITE_ENV}=1 cargo test --test readme) and review the diff"
    );
}
