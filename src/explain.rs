//! `sockconf explain ID`: the case's specification, its source, and its expectations.

use harness::Case;
use std::fmt::Write;

pub fn explain(case: &Case) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}\n", case.id);
    let _ = writeln!(out, "{}\n", wrap(case.doc, 78));
    let _ = writeln!(out, "Source: {}\n", case.source);
    for need in case.needs {
        let _ = writeln!(out, "Needs: {need:?}");
    }
    for v in case.variants {
        let _ = writeln!(
            out,
            "Variant {}: its own namespace; switches {:?}; needs {:?}",
            v.name, v.switches, v.needs
        );
    }
    if case.expect.is_empty() {
        let _ = writeln!(out, "No expectation confirmed on any OS yet.");
    }
    for e in case.expect {
        let _ = writeln!(out, "Expected on {}, {}:", e.os.name(), e.kernel.describe());
        for (side, facts) in [("server", e.server), ("client", e.client)] {
            let rendered: Vec<String> = facts.iter().map(|(n, m)| format!("{n} = {m}")).collect();
            let _ = writeln!(out, "  {side:<6}  {}", rendered.join(", "));
        }
        if !e.wire.is_empty() {
            let _ = writeln!(out, "  wire:");
            for fact in e.wire {
                let _ = writeln!(out, "    {fact}");
            }
            let _ = writeln!(out, "\n{}", crate::ladder::expected(e.wire));
        }
    }
    out
}

fn wrap(text: &str, width: usize) -> String {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("one line at least");
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines.join("\n")
}
