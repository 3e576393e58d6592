//! Ladder diagrams: the client's and the server's timelines side by side, each segment an
//! arrow between them, each side's calls and results beside its own timeline at the moment
//! they happened, and the TCP state names a textbook would write there.
//!
//! `sockconf run -v` draws what was captured; `sockconf explain` draws what the wire facts
//! expect. Both build a [`Ladder`] first, the rows in order; [`Ladder::text`] draws it for a
//! terminal, and the HTML report draws the same rows as SVG (`html::svg`).

use harness::observe::segment::{seq_at_or_after, Flags, Segment};
use harness::report::CaseReport;
use harness::{Role, Seg, WireFact};
use std::collections::HashMap;
use std::fmt::Write;

/// Column widths: time, a side's notes, the space between the timelines.
const TIME_W: usize = 9;
const NOTE_W: usize = 26;
const ARROW_W: usize = 46;

/// A ladder: its rows from top to bottom, each at its moment (microseconds from the case's
/// origin) where it has one.
pub struct Ladder {
    pub rows: Vec<(Option<u64>, Row)>,
}

/// One line of a ladder.
pub enum Row {
    /// A segment, with the states the sender and the receiver are in after it (empty where
    /// they do not change).
    Arrow {
        from: Role,
        label: String,
        client: String,
        server: String,
        /// Its index among the case's captured segments; `None` in an expected ladder.
        segment: Option<usize>,
    },
    /// A side's note (a call and its result), beside its timeline; `fact` is the fact's index
    /// among that side's observations, where the note is one.
    Note {
        side: Role,
        text: String,
        fact: Option<usize>,
    },
    /// Something both sides share: a barrier, an ellipsis, a remark.
    Across(String),
}

impl Ladder {
    /// The ladder for a terminal: one line per row, time on the left.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:>TIME_W$}  {:>NOTE_W$} {:ARROW_W$}   server",
            "ms", "client", ""
        );
        for (at, row) in &self.rows {
            let time = at.map_or(String::new(), |us| format!("{:.3}", us as f64 / 1000.0));
            let blank = " ".repeat(ARROW_W);
            let line = match row {
                Row::Arrow {
                    from,
                    label,
                    client,
                    server,
                    ..
                } => {
                    let dashes = "-".repeat(ARROW_W.saturating_sub(label.len() + 5));
                    let arrow = match from {
                        Role::Client => format!("-- {label} {dashes}>"),
                        Role::Server => format!("<{dashes} {label} --"),
                    };
                    format!("{time:>TIME_W$}  {client:>NOTE_W$} |{arrow}| {server}")
                }
                Row::Note {
                    side: Role::Client,
                    text,
                    ..
                } => format!("{time:>TIME_W$}  {text:>NOTE_W$} |{blank}|"),
                Row::Note {
                    side: Role::Server,
                    text,
                    ..
                } => format!("{time:>TIME_W$}  {:>NOTE_W$} |{blank}| {text}", ""),
                Row::Across(text) => {
                    let text = format!(" {text} ");
                    format!("{time:>TIME_W$}  {:>NOTE_W$} |{text:·^ARROW_W$}|", "")
                }
            };
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }
}

fn label(s: &Segment, many_conns: bool) -> String {
    let conn = if many_conns {
        format!("#{} ", s.conn)
    } else {
        String::new()
    };
    format!(
        "{conn}{} seq={} ack={} len={}",
        s.flags, s.seq, s.ack, s.len
    )
}

/// The TCP states the segments imply, as RFC 9293's state diagram names them (as Linux's
/// `tcp_states.h` spells them). Inferred from the wire, so a state the kernel reaches without
/// a segment (a timeout) is not shown.
struct States {
    state: HashMap<(u32, Role), &'static str>,
    fin_end: HashMap<(u32, Role), u32>,
}

impl States {
    fn new() -> States {
        States {
            state: HashMap::new(),
            fin_end: HashMap::new(),
        }
    }

    fn get(&self, conn: u32, end: Role) -> &'static str {
        self.state.get(&(conn, end)).copied().unwrap_or(match end {
            Role::Client => "CLOSED",
            Role::Server => "LISTEN",
        })
    }

    /// The sender's and the receiver's new states after `s`, where they change.
    fn step(&mut self, s: &Segment) -> (Option<&'static str>, Option<&'static str>) {
        let peer = other(s.from);
        let (before_from, before_to) = (self.get(s.conn, s.from), self.get(s.conn, peer));
        let f = s.flags;
        let sent = if f.has(Flags::RST) {
            "CLOSED"
        } else if f.has(Flags::SYN) {
            if f.has(Flags::ACK) {
                "SYN_RECV"
            } else {
                "SYN_SENT"
            }
        } else if f.has(Flags::FIN) {
            self.fin_end.insert((s.conn, s.from), s.end_seq());
            match before_from {
                "CLOSE_WAIT" => "LAST_ACK",
                "ESTABLISHED" | "SYN_RECV" => "FIN_WAIT1",
                other => other,
            }
        } else {
            before_from
        };
        let mut got = before_to;
        if f.has(Flags::RST) {
            got = "CLOSED";
        } else if f.has(Flags::SYN) {
            got = if f.has(Flags::ACK) {
                "ESTABLISHED"
            } else {
                "SYN_RECV"
            };
        } else {
            let acks_own_fin = f.has(Flags::ACK)
                && self
                    .fin_end
                    .get(&(s.conn, peer))
                    .is_some_and(|end| seq_at_or_after(s.ack, *end));
            if f.has(Flags::ACK) && got == "SYN_RECV" {
                got = "ESTABLISHED";
            }
            if acks_own_fin {
                got = match got {
                    "FIN_WAIT1" => "FIN_WAIT2",
                    "CLOSING" => "TIME_WAIT",
                    "LAST_ACK" => "CLOSED",
                    other => other,
                };
            }
            if f.has(Flags::FIN) {
                got = match got {
                    "ESTABLISHED" => "CLOSE_WAIT",
                    "FIN_WAIT1" => "CLOSING",
                    "FIN_WAIT2" => "TIME_WAIT",
                    other => other,
                };
            }
        }
        self.state.insert((s.conn, s.from), sent);
        self.state.insert((s.conn, peer), got);
        (
            (sent != before_from).then_some(sent),
            (got != before_to).then_some(got),
        )
    }
}

fn other(end: Role) -> Role {
    match end {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

/// The arrow row of `s`, with the state changes it causes placed beside each timeline.
fn arrow_row(index: usize, s: &Segment, many_conns: bool, states: &mut States) -> Row {
    let (sender, receiver) = states.step(s);
    let (client, server) = match s.from {
        Role::Client => (sender, receiver),
        Role::Server => (receiver, sender),
    };
    Row::Arrow {
        from: s.from,
        label: label(s, many_conns),
        client: client.unwrap_or_default().to_string(),
        server: server.unwrap_or_default().to_string(),
        segment: Some(index),
    }
}

/// The captured conversation of a case, with its calls and barriers, as text; None if nothing
/// was captured.
pub fn observed(case: &CaseReport) -> Option<String> {
    observed_ladder(case).map(|l| l.text())
}

/// The captured conversation of a case, with its calls and barriers; None if nothing was
/// captured.
pub fn observed_ladder(case: &CaseReport) -> Option<Ladder> {
    let segments = case.segments.as_ref()?;
    let many_conns = segments.iter().any(|s| s.conn > 0);
    // (time, tie-break, row): barriers, then segments, then calls, at the same microsecond.
    let mut rows: Vec<(u64, u8, Row)> = vec![];
    for m in &case.steps {
        rows.push((m.at_us, 0, Row::Across(format!("barrier '{}'", m.step))));
    }
    let mut states = States::new();
    for (i, s) in segments.iter().enumerate() {
        rows.push((s.at_us, 1, arrow_row(i, s, many_conns, &mut states)));
    }
    for (side, facts) in [
        (Role::Client, &case.observations.client),
        (Role::Server, &case.observations.server),
    ] {
        for (i, f) in facts.iter().enumerate() {
            let text = format!("{} = {}", f.name, f.value);
            let note = Row::Note {
                side,
                text,
                fact: Some(i),
            };
            rows.push((f.at_us.unwrap_or(u64::MAX), 2, note));
        }
    }
    rows.sort_by_key(|(at, order, _)| (*at, *order));
    let rows = rows
        .into_iter()
        .map(|(at, _, row)| ((at != u64::MAX).then_some(at), row))
        .collect();
    Some(Ladder { rows })
}

/// A segment the expected ladder draws: who sends what.
#[derive(Clone, PartialEq, Eq)]
struct Expected {
    from: Role,
    what: String,
}

fn node(end: Role, seg: Seg) -> Expected {
    Expected {
        from: end,
        what: seg.name().to_string(),
    }
}

/// The ladder the wire facts expect, as text.
pub fn expected(facts: &[WireFact]) -> String {
    expected_ladder(facts).text()
}

/// The ladder the wire facts expect: the handshake, then the segments the facts name in an
/// order that satisfies every "before" among them, then what must not be sent.
pub fn expected_ladder(facts: &[WireFact]) -> Ladder {
    let handshake = [
        (Role::Client, "SYN"),
        (Role::Server, "SYN|ACK"),
        (Role::Client, "ACK"),
    ];
    let mut rows: Vec<(Option<u64>, Row)> = handshake
        .iter()
        .map(|(from, what)| (None, expected_arrow(*from, what)))
        .collect();
    rows.push((None, Row::Across("…".into())));
    let mut nodes: Vec<Expected> = vec![];
    let mut edges: Vec<(usize, usize)> = vec![];
    let mut remarks: Vec<String> = vec![];
    let add = |nodes: &mut Vec<Expected>, n: Expected| -> usize {
        nodes.iter().position(|m| *m == n).unwrap_or_else(|| {
            nodes.push(n);
            nodes.len() - 1
        })
    };
    for fact in facts {
        match *fact {
            WireFact::Teardown(segs) => {
                for (from, flags) in segs {
                    rows.push((None, expected_arrow(*from, flags)));
                }
            }
            WireFact::TeardownOneOf(variants) => {
                for (i, segs) in variants.iter().enumerate() {
                    if i > 0 {
                        rows.push((None, Row::Across("or".into())));
                    }
                    for (from, flags) in segs.iter() {
                        rows.push((None, expected_arrow(*from, flags)));
                    }
                }
            }
            WireFact::Before(a, b) => {
                let (x, y) = (
                    add(&mut nodes, node(a.0, a.1)),
                    add(&mut nodes, node(b.0, b.1)),
                );
                edges.push((x, y));
            }
            WireFact::Between { seg, after, before } => {
                let x = add(&mut nodes, node(after.0, after.1));
                let y = add(&mut nodes, node(seg.0, seg.1));
                let z = add(&mut nodes, node(before.0, before.1));
                edges.extend([(x, y), (y, z)]);
            }
            WireFact::FinAcked(end) => {
                let x = add(&mut nodes, node(end, Seg::Fin));
                let ack = Expected {
                    from: other(end),
                    what: format!("ACK of {}'s FIN", end.name()),
                };
                let y = add(&mut nodes, ack);
                edges.push((x, y));
            }
            WireFact::ResetNotFin(end) => {
                add(&mut nodes, node(end, Seg::Rst));
                remarks.push(format!("no FIN from the {}", end.name()));
            }
            WireFact::Count(end, seg, 0) => {
                remarks.push(format!("no {} from the {}", seg.name(), end.name()))
            }
            WireFact::Count(end, seg, n) => {
                let i = add(&mut nodes, node(end, seg));
                if n > 1 {
                    nodes[i].what = format!("{} ×{n}", seg.name());
                }
            }
            WireFact::AfterStep((end, seg), step) => {
                add(&mut nodes, node(end, seg));
                remarks.push(format!(
                    "the {} {} only after barrier '{step}'",
                    end.name(),
                    seg.name()
                ));
            }
            WireFact::Silent { from, to } => remarks.push(format!(
                "no segment from barrier '{from}' to barrier '{to}'"
            )),
        }
    }
    for i in topological(nodes.len(), &edges) {
        rows.push((None, expected_arrow(nodes[i].from, &nodes[i].what)));
    }
    for r in remarks {
        rows.push((None, Row::Across(r)));
    }
    Ladder { rows }
}

fn expected_arrow(from: Role, what: &str) -> Row {
    Row::Arrow {
        from,
        label: what.to_string(),
        client: String::new(),
        server: String::new(),
        segment: None,
    }
}

/// Kahn's algorithm, taking the earliest-named ready node first, so that the facts' own
/// order shows where they leave it open.
fn topological(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut indegree = vec![0usize; n];
    for (_, b) in edges {
        indegree[*b] += 1;
    }
    let mut done = vec![false; n];
    let mut order = vec![];
    while let Some(i) = (0..n).find(|&i| !done[i] && indegree[i] == 0) {
        done[i] = true;
        order.push(i);
        for (a, b) in edges {
            if *a == i {
                indegree[*b] -= 1;
            }
        }
    }
    // A cycle among the facts (a contradiction) still shows its nodes, after the rest.
    order.extend((0..n).filter(|&i| !done[i]));
    order
}
