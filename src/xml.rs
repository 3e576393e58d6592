//! Escaping text for XML: the JUnit file and the HTML report (written as XHTML-compatible
//! markup, so that an XML parser reads it too).

/// Character data: the markup characters escaped, and the characters XML 1.0 cannot carry at
/// all (NUL and the other C0 controls but tab, newline and carriage return) replaced by U+FFFD.
pub fn text(s: &str) -> String {
    escape(s, false)
}

/// An attribute value in double quotes: as [`text`], plus quotes, and line breaks and tabs as
/// character references (a parser would otherwise normalise them to spaces).
pub fn attr(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, in_attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attribute => out.push_str("&quot;"),
            '\'' if in_attribute => out.push_str("&apos;"),
            '\n' if in_attribute => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' if in_attribute => out.push_str("&#9;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_breaks_and_controls() {
        assert_eq!(text("a<b>&c\n\"'"), "a&lt;b&gt;&amp;c\n\"'");
        assert_eq!(attr("a\"b'\nc\td"), "a&quot;b&apos;&#10;c&#9;d");
        assert_eq!(text("nul\0bell\u{7}"), "nul\u{FFFD}bell\u{FFFD}");
    }
}
