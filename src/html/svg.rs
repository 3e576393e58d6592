//! A [`Ladder`] as inline SVG: the rows `sockconf run -v` prints, drawn. Each row keeps its
//! place from top to bottom (time is the column on the left, not the vertical scale, so that
//! segments a few microseconds apart stay readable); segments are arrows slanting down from
//! the sender's timeline to the receiver's, labelled with flags, seq/ack and length, with the
//! states they imply beside each timeline.
//!
//! Sizes come from the longest texts, measured in characters of the monospace font the page
//! asks for (no font is fetched: the browser's own monospace), so nothing is clipped.

use crate::ladder::{Ladder, Row};
use crate::xml::{attr, text};
use harness::Role;
use std::collections::BTreeSet;
use std::fmt::Write;

/// The page's SVG font size, and the width of one of its monospace characters (0.6 em is what
/// common monospace fonts measure; a little more leaves room).
const FONT_PX: f64 = 11.0;
const CHAR_PX: f64 = FONT_PX * 0.62;
/// Rows: the header's height, and each row's.
const HEADER: f64 = 30.0;
const ROW: f64 = 24.0;
/// The time column's right edge, and the gap between a timeline and the text beside it.
const TIME_RIGHT: f64 = 58.0;
const GAP: f64 = 8.0;

/// What to mark on a ladder: segments (by index among the case's captured segments) and
/// notes (by index among their side's facts) that differ from another report's.
#[derive(Default)]
pub struct Marks {
    pub segments: BTreeSet<usize>,
    pub client_facts: BTreeSet<usize>,
    pub server_facts: BTreeSet<usize>,
}

impl Marks {
    fn fact(&self, side: Role, index: usize) -> bool {
        match side {
            Role::Client => self.client_facts.contains(&index),
            Role::Server => self.server_facts.contains(&index),
        }
    }
}

fn width_of(s: &str) -> f64 {
    s.chars().count() as f64 * CHAR_PX
}

/// The ladder as one `<svg class="ladder {class}">` element; `title` names it for readers
/// and screen readers. Every arrow is a `<g class="arrow">`.
pub fn ladder(l: &Ladder, class: &str, title: &str, marks: &Marks) -> String {
    // The widest text beside each timeline and between them.
    let (mut left, mut middle, mut right) = (width_of("client"), 0.0f64, width_of("server"));
    for (_, row) in &l.rows {
        match row {
            Row::Arrow {
                label,
                client,
                server,
                ..
            } => {
                left = left.max(width_of(client));
                right = right.max(width_of(server));
                middle = middle.max(width_of(label));
            }
            Row::Note {
                side: Role::Client,
                text,
                ..
            } => left = left.max(width_of(text)),
            Row::Note {
                side: Role::Server,
                text,
                ..
            } => right = right.max(width_of(text)),
            Row::Across(text) => middle = middle.max(width_of(text)),
        }
    }
    let client_x = (TIME_RIGHT + GAP + left + GAP).round();
    let server_x = (client_x + (middle + 4.0 * GAP).max(240.0)).round();
    let width = (server_x + GAP + right + GAP).round();
    let height = HEADER + ROW * l.rows.len() as f64 + GAP;

    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="ladder {}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img"><title>{}</title>"#,
        attr(class),
        text(title)
    );
    // Headers and timelines.
    let _ = write!(
        out,
        r#"<text class="time head" x="{TIME_RIGHT}" y="18" text-anchor="end">ms</text><text class="head" x="{client_x}" y="18" text-anchor="middle">client</text><text class="head" x="{server_x}" y="18" text-anchor="middle">server</text>"#
    );
    for x in [client_x, server_x] {
        let _ = write!(
            out,
            r#"<line class="timeline" x1="{x}" y1="{}" x2="{x}" y2="{}"/>"#,
            HEADER - 6.0,
            height - GAP / 2.0
        );
    }
    for (i, (at, row)) in l.rows.iter().enumerate() {
        let top = HEADER + ROW * i as f64;
        let base = top + ROW * 0.5 + FONT_PX * 0.35;
        let marked = match row {
            Row::Arrow { segment, .. } => segment.is_some_and(|s| marks.segments.contains(&s)),
            Row::Note { side, fact, .. } => fact.is_some_and(|f| marks.fact(*side, f)),
            Row::Across(_) => false,
        };
        let kind = match row {
            Row::Arrow { .. } => "arrow",
            Row::Note { .. } => "call",
            Row::Across(_) => "across",
        };
        let _ = write!(
            out,
            r#"<g class="{kind}{}">"#,
            if marked { " differs" } else { "" }
        );
        if marked {
            let _ = write!(
                out,
                r#"<rect class="mark" x="0" y="{top}" width="{width}" height="{ROW}"/>"#
            );
        }
        if let Some(us) = at {
            let _ = write!(
                out,
                r#"<text class="time" x="{TIME_RIGHT}" y="{base}" text-anchor="end">{:.3}</text>"#,
                *us as f64 / 1000.0
            );
        }
        match row {
            Row::Arrow {
                from,
                label,
                client,
                server,
                ..
            } => {
                let (x1, x2) = match from {
                    Role::Client => (client_x, server_x),
                    Role::Server => (server_x, client_x),
                };
                let (y1, y2) = (top + ROW * 0.45, top + ROW * 0.85);
                let _ = write!(
                    out,
                    r#"<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}"/>{}"#,
                    head(x1, y1, x2, y2)
                );
                let _ = write!(
                    out,
                    r#"<text class="label" x="{}" y="{}" text-anchor="middle">{}</text>"#,
                    (client_x + server_x) / 2.0,
                    top + ROW * 0.45 - 3.0,
                    text(label)
                );
                state(&mut out, client, client_x - GAP, base, "end");
                state(&mut out, server, server_x + GAP, base, "start");
            }
            Row::Note {
                side, text: note, ..
            } => {
                let (x, anchor) = match side {
                    Role::Client => (client_x - GAP, "end"),
                    Role::Server => (server_x + GAP, "start"),
                };
                let _ = write!(
                    out,
                    r#"<text x="{x}" y="{base}" text-anchor="{anchor}">{}</text>"#,
                    text(note)
                );
            }
            Row::Across(remark) => {
                let y = top + ROW * 0.5;
                let _ = write!(
                    out,
                    r#"<line x1="{client_x}" y1="{y}" x2="{server_x}" y2="{y}"/><text x="{}" y="{base}" text-anchor="middle">{}</text>"#,
                    (client_x + server_x) / 2.0,
                    text(remark)
                );
            }
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    out
}

/// A TCP state beside a timeline, where the segment changed it.
fn state(out: &mut String, name: &str, x: f64, y: f64, anchor: &str) {
    if !name.is_empty() {
        let _ = write!(
            out,
            r#"<text class="state" x="{x}" y="{y}" text-anchor="{anchor}">{}</text>"#,
            text(name)
        );
    }
}

/// The arrowhead at (x2, y2) of the line from (x1, y1).
fn head(x1: f64, y1: f64, x2: f64, y2: f64) -> String {
    let (dx, dy) = (x2 - x1, y2 - y1);
    let len = (dx * dx + dy * dy).sqrt().max(1.0);
    let (ux, uy) = (dx / len, dy / len);
    let (length, half) = (8.0, 3.5);
    let (bx, by) = (x2 - ux * length, y2 - uy * length);
    format!(
        r#"<polygon points="{x2:.1},{y2:.1} {:.1},{:.1} {:.1},{:.1}"/>"#,
        bx - uy * half,
        by + ux * half,
        bx + uy * half,
        by - ux * half
    )
}
