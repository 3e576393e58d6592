//! Facts about the segments on the wire, judged where the case's traffic was captured.
//!
//! Every fact is about order and kind, never about time: which end sent a FIN or a RST, how
//! many, which came first, what lay between two segments, or that nothing at all travelled
//! while the sides were in a given step. Facts are judged over all of a case's connections;
//! "client" and "server" are the TCP roles (the end that sent the SYN is the client).

use crate::observe::segment::{seq_at_or_after, Flags, Segment};
use crate::observe::Role;
use crate::report::StepMark;
use std::fmt;

/// A kind of segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seg {
    Syn,
    Fin,
    Rst,
    /// Any segment that carries payload.
    Data,
}

impl Seg {
    pub fn matches(self, s: &Segment) -> bool {
        match self {
            Seg::Syn => s.flags.has(Flags::SYN),
            Seg::Fin => s.flags.has(Flags::FIN),
            Seg::Rst => s.flags.has(Flags::RST),
            Seg::Data => s.len > 0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Seg::Syn => "SYN",
            Seg::Fin => "FIN",
            Seg::Rst => "RST",
            Seg::Data => "data",
        }
    }
}

/// One fact about the captured segments.
#[derive(Clone, Copy, Debug)]
pub enum WireFact {
    /// This end sent at least one RST and no FIN: it aborted, it did not close.
    ResetNotFin(Role),
    /// This end sent exactly this many segments of the kind.
    Count(Role, Seg, u32),
    /// The first segment of the one kind comes before the first of the other; both are sent.
    Before((Role, Seg), (Role, Seg)),
    /// A segment of kind `seg` lies between the first `after` and the first `before`.
    Between {
        seg: (Role, Seg),
        after: (Role, Seg),
        before: (Role, Seg),
    },
    /// This end's first FIN is acknowledged by the other end.
    FinAcked(Role),
    /// The first segment of the kind travels after the release of barrier `step`: what the
    /// sides did before it did not send one.
    AfterStep((Role, Seg), &'static str),
    /// No segment at all travels from the release of barrier `from` to the release of
    /// barrier `to`: what the sides did in between put nothing on the wire.
    Silent {
        from: &'static str,
        to: &'static str,
    },
    /// From the first FIN on, the segments are exactly these (sender, flags), none with payload.
    Teardown(&'static [(Role, &'static str)]),
    /// From the first FIN on, the segments are exactly one of these sequences: for a teardown
    /// whose shape depends on timing the case cannot control. The report records which.
    TeardownOneOf(&'static [&'static [(Role, &'static str)]]),
}

/// `client FIN|ACK, server ACK`
fn sequence(segs: &[(Role, &str)]) -> String {
    segs.iter()
        .map(|(end, flags)| format!("{} {flags}", end.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The segments from the first FIN on, on its connection, spelled as [`WireFact::Teardown`]
/// spells them (with `len N` where there is payload); empty without a FIN.
pub fn teardown(segments: &[Segment]) -> Vec<String> {
    let Some(i) = segments.iter().position(|s| s.flags.has(Flags::FIN)) else {
        return vec![];
    };
    let conn = segments[i].conn;
    segments[i..]
        .iter()
        .filter(|s| s.conn == conn)
        .map(|s| {
            let len = if s.len > 0 {
                format!(" len {}", s.len)
            } else {
                String::new()
            };
            format!("{} {}{len}", s.from.name(), s.flags)
        })
        .collect()
}

fn kind(end: Role, seg: Seg) -> String {
    format!("{} {}", end.name(), seg.name())
}

impl fmt::Display for WireFact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WireFact::ResetNotFin(end) => write!(f, "{} sends RST and no FIN", end.name()),
            WireFact::Count(end, seg, n) => write!(f, "{} sends {n} {}", end.name(), seg.name()),
            WireFact::Before((a, sa), (b, sb)) => {
                write!(f, "{} comes before {}", kind(a, sa), kind(b, sb))
            }
            WireFact::Between {
                seg: (e, s),
                after: (a, sa),
                before: (b, sb),
            } => write!(
                f,
                "{} travels between {} and {}",
                kind(e, s),
                kind(a, sa),
                kind(b, sb)
            ),
            WireFact::FinAcked(end) => write!(f, "{} FIN is acknowledged", end.name()),
            WireFact::AfterStep((end, seg), step) => {
                write!(
                    f,
                    "the first {} comes after barrier '{step}'",
                    kind(end, seg)
                )
            }
            WireFact::Silent { from, to } => {
                write!(f, "no segment from barrier '{from}' to barrier '{to}'")
            }
            WireFact::Teardown(segs) => write!(f, "from the first FIN on: {}", sequence(segs)),
            WireFact::TeardownOneOf(variants) => {
                let list: Vec<String> = variants.iter().map(|v| sequence(v)).collect();
                write!(f, "from the first FIN on, one of: {}", list.join("; or "))
            }
        }
    }
}

/// The differences between the captured segments and the wire facts, one line each.
pub fn diff_wire(facts: &[WireFact], segments: &[Segment], steps: &[StepMark]) -> Vec<String> {
    facts
        .iter()
        .filter_map(|fact| {
            judge(fact, segments, steps)
                .map(|observed| format!("wire: expected {fact}; {observed}"))
        })
        .collect()
}

fn first(segments: &[Segment], end: Role, seg: Seg) -> Option<usize> {
    segments
        .iter()
        .position(|s| s.from == end && seg.matches(s))
}

fn count(segments: &[Segment], end: Role, seg: Seg) -> usize {
    segments
        .iter()
        .filter(|s| s.from == end && seg.matches(s))
        .count()
}

/// How the segment at `i` reads in a difference: `#4 client FIN|ACK`.
fn at(segments: &[Segment], i: usize) -> String {
    let s = &segments[i];
    format!("#{i} {} {}", s.from.name(), s.flags)
}

fn found(segments: &[Segment], i: Option<usize>, end: Role, seg: Seg) -> String {
    match i {
        Some(i) => at(segments, i),
        None => format!("no {}", kind(end, seg)),
    }
}

/// None when the fact holds; otherwise what was observed instead.
fn judge(fact: &WireFact, segments: &[Segment], steps: &[StepMark]) -> Option<String> {
    match *fact {
        WireFact::ResetNotFin(end) => {
            let (rst, fin) = (
                count(segments, end, Seg::Rst),
                count(segments, end, Seg::Fin),
            );
            (rst == 0 || fin > 0)
                .then(|| format!("observed {} sent {rst} RST and {fin} FIN", end.name()))
        }
        WireFact::Count(end, seg, n) => {
            let got = count(segments, end, seg);
            (got != n as usize).then(|| format!("observed {got}"))
        }
        WireFact::Before((a, sa), (b, sb)) => {
            let (ia, ib) = (first(segments, a, sa), first(segments, b, sb));
            match (ia, ib) {
                (Some(x), Some(y)) if x < y => None,
                _ => Some(format!(
                    "observed {} and {}",
                    found(segments, ia, a, sa),
                    found(segments, ib, b, sb)
                )),
            }
        }
        WireFact::Between {
            seg: (e, s),
            after: (a, sa),
            before: (b, sb),
        } => {
            let (ia, ib) = (first(segments, a, sa), first(segments, b, sb));
            let (Some(x), Some(y)) = (ia, ib) else {
                return Some(format!(
                    "observed {} and {}",
                    found(segments, ia, a, sa),
                    found(segments, ib, b, sb)
                ));
            };
            let inside = (x + 1..y).any(|i| segments[i].from == e && s.matches(&segments[i]));
            (!inside).then(|| {
                format!(
                    "observed none between {} and {}",
                    at(segments, x),
                    at(segments, y)
                )
            })
        }
        WireFact::FinAcked(end) => {
            let Some(i) = first(segments, end, Seg::Fin) else {
                return Some(format!("observed no {}", kind(end, Seg::Fin)));
            };
            let fin = &segments[i];
            let acked = segments[i + 1..].iter().any(|s| {
                s.conn == fin.conn
                    && s.from != end
                    && s.flags.has(Flags::ACK)
                    && seq_at_or_after(s.ack, fin.end_seq())
            });
            (!acked).then(|| format!("observed no acknowledgement of {}", at(segments, i)))
        }
        WireFact::AfterStep((end, seg), step) => {
            let Some(t) = release(steps, step) else {
                return Some(unreleased(steps));
            };
            match first(segments, end, seg) {
                Some(i) if segments[i].at_us >= t => None,
                Some(i) => Some(format!(
                    "observed {} at {} µs, before the barrier at {t} µs",
                    at(segments, i),
                    segments[i].at_us
                )),
                None => Some(format!("observed no {}", kind(end, seg))),
            }
        }
        WireFact::Silent { from, to } => {
            let (Some(t0), Some(t1)) = (release(steps, from), release(steps, to)) else {
                return Some(unreleased(steps));
            };
            let inside: Vec<String> = segments
                .iter()
                .enumerate()
                .filter(|(_, s)| (t0..=t1).contains(&s.at_us))
                .map(|(i, _)| at(segments, i))
                .collect();
            (!inside.is_empty()).then(|| format!("observed {}", inside.join(", ")))
        }
        WireFact::Teardown(want) => teardown_is_one_of(segments, &[want]),
        WireFact::TeardownOneOf(variants) => teardown_is_one_of(segments, variants),
    }
}

/// When barrier `step` was first released.
fn release(steps: &[StepMark], step: &str) -> Option<u64> {
    steps.iter().find(|m| m.step == step).map(|m| m.at_us)
}

fn unreleased(steps: &[StepMark]) -> String {
    let released: Vec<&str> = steps.iter().map(|m| m.step.as_str()).collect();
    format!(
        "the barriers were not all released (released: {})",
        released.join(", ")
    )
}

fn teardown_is_one_of(segments: &[Segment], variants: &[&[(Role, &str)]]) -> Option<String> {
    let observed = teardown(segments).join(", ");
    let matches = variants.iter().any(|v| sequence(v) == observed);
    (!matches).then(|| {
        if observed.is_empty() {
            "observed no FIN".to_string()
        } else {
            format!("observed {observed}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::{Client, Server};

    fn seg(from: Role, flags: &str, seq: u32, ack: u32, len: u32, at_us: u64) -> Segment {
        Segment {
            at_us,
            conn: 0,
            from,
            flags: Flags::try_from(flags.to_string()).unwrap(),
            seq,
            ack,
            len,
        }
    }

    /// Handshake, 5 bytes from the client, then FIN, FIN|ACK, ACK.
    fn three_segment_close() -> Vec<Segment> {
        vec![
            seg(Client, "SYN", 0, 0, 0, 10),
            seg(Server, "SYN|ACK", 0, 1, 0, 11),
            seg(Client, "ACK", 1, 1, 0, 12),
            seg(Client, "PSH|ACK", 1, 1, 5, 20),
            seg(Server, "ACK", 1, 6, 0, 21),
            seg(Client, "FIN|ACK", 6, 1, 0, 30),
            seg(Server, "FIN|ACK", 1, 7, 0, 31),
            seg(Client, "ACK", 7, 2, 0, 32),
        ]
    }

    const STEPS: &[(&str, u64)] = &[("sent", 25), ("closed", 29)];

    fn steps() -> Vec<StepMark> {
        STEPS
            .iter()
            .map(|(step, at_us)| StepMark {
                step: step.to_string(),
                at_us: *at_us,
            })
            .collect()
    }

    #[test]
    fn an_orderly_close_meets_its_facts() {
        let facts = [
            WireFact::Before((Client, Seg::Fin), (Server, Seg::Fin)),
            WireFact::FinAcked(Client),
            WireFact::FinAcked(Server),
            WireFact::Count(Client, Seg::Rst, 0),
            WireFact::Count(Client, Seg::Data, 1),
            WireFact::Between {
                seg: (Server, Seg::Fin),
                after: (Client, Seg::Fin),
                before: (Client, Seg::Fin),
            },
            WireFact::Silent {
                from: "sent",
                to: "closed",
            },
            WireFact::Teardown(&[(Client, "FIN|ACK"), (Server, "FIN|ACK"), (Client, "ACK")]),
        ];
        let diffs = diff_wire(&facts[..5], &three_segment_close(), &steps());
        assert!(diffs.is_empty(), "{diffs:?}");
        let diffs = diff_wire(&facts[6..], &three_segment_close(), &steps());
        assert!(diffs.is_empty(), "{diffs:?}");
        // A FIN cannot lie between itself and itself.
        assert_eq!(
            diff_wire(&facts[5..6], &three_segment_close(), &steps()).len(),
            1
        );
    }

    #[test]
    fn an_abortive_close_breaks_them_and_says_how() {
        let mut segs = three_segment_close();
        segs.truncate(5);
        segs.push(seg(Client, "RST|ACK", 6, 1, 0, 30));
        let diffs = diff_wire(
            &[
                WireFact::Before((Client, Seg::Fin), (Server, Seg::Fin)),
                WireFact::ResetNotFin(Client),
                WireFact::ResetNotFin(Server),
                WireFact::Teardown(&[(Client, "FIN|ACK")]),
                WireFact::Silent {
                    from: "closed",
                    to: "gone",
                },
            ],
            &segs,
            &steps(),
        );
        assert_eq!(
            diffs,
            [
                "wire: expected client FIN comes before server FIN; observed no client FIN and no server FIN",
                "wire: expected server sends RST and no FIN; observed server sent 0 RST and 0 FIN",
                "wire: expected from the first FIN on: client FIN|ACK; observed no FIN",
                "wire: expected no segment from barrier 'closed' to barrier 'gone'; the barriers were not all released (released: sent, closed)",
            ]
        );
    }

    #[test]
    fn a_fin_after_a_barrier() {
        let after = |step| WireFact::AfterStep((Client, Seg::Fin), step);
        assert!(diff_wire(&[after("closed")], &three_segment_close(), &steps()).is_empty());
        let mut early = steps();
        early[1].at_us = 31;
        assert_eq!(
            diff_wire(&[after("closed")], &three_segment_close(), &early),
            ["wire: expected the first client FIN comes after barrier 'closed'; observed #5 client FIN|ACK at 30 µs, before the barrier at 31 µs"]
        );
    }

    #[test]
    fn silence_is_broken_by_any_segment_in_the_step() {
        let mut steps = steps();
        steps[1].at_us = 31;
        let d = diff_wire(
            &[WireFact::Silent {
                from: "sent",
                to: "closed",
            }],
            &three_segment_close(),
            &steps,
        );
        assert_eq!(
            d,
            ["wire: expected no segment from barrier 'sent' to barrier 'closed'; observed #5 client FIN|ACK, #6 server FIN|ACK"]
        );
    }
}
