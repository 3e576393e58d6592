//! The teardown shape of a connection: the flags of its segments from the first FIN or RST on,
//! in order, per direction. Two kernels that close the same way have the same shape, whatever
//! the timing, the sizes and the sequence numbers; one that resets where another sends a FIN,
//! or closes in three segments where another takes four, has another. `sockconf compare` puts
//! shapes side by side and the HTML report marks the segments they cover; both take them from
//! here. docs/report-schema.md says how a shape is written.

use super::segment::{Flags, Segment};
use super::Role;
use std::fmt;

/// One connection's teardown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeardownShape {
    /// The connection, as [`Segment::conn`] numbers it.
    pub conn: u32,
    /// Where the teardown begins: the index (among all the case's segments) of the
    /// connection's first FIN or RST; `None` if it has neither.
    pub first: Option<usize>,
    /// The flags of the client's segments from there on, in order.
    pub client: Vec<Flags>,
    /// The same for the server.
    pub server: Vec<Flags>,
}

impl TeardownShape {
    /// Whether `segments[index]` is part of this teardown.
    pub fn covers(&self, index: usize, segment: &Segment) -> bool {
        segment.conn == self.conn && self.first.is_some_and(|first| index >= first)
    }
}

/// The teardown shape of every connection among `segments`, in the order of their numbers.
pub fn teardown_shapes(segments: &[Segment]) -> Vec<TeardownShape> {
    let conns = segments.iter().map(|s| s.conn).max().map_or(0, |m| m + 1);
    (0..conns)
        .filter(|conn| segments.iter().any(|s| s.conn == *conn))
        .map(|conn| {
            let first = segments.iter().position(|s| {
                s.conn == conn && (s.flags.has(Flags::FIN) || s.flags.has(Flags::RST))
            });
            let of = |end: Role| -> Vec<Flags> {
                let Some(first) = first else { return vec![] };
                segments[first..]
                    .iter()
                    .filter(|s| s.conn == conn && s.from == end)
                    .map(|s| s.flags)
                    .collect()
            };
            TeardownShape {
                conn,
                first,
                client: of(Role::Client),
                server: of(Role::Server),
            }
        })
        .collect()
}

/// `client FIN|ACK, ACK; server ACK, FIN|ACK`; `server none` where that end sent nothing from
/// the first FIN or RST on; `no FIN or RST` for a connection that never ended on the wire.
impl fmt::Display for TeardownShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first.is_none() {
            return f.write_str("no FIN or RST");
        }
        let side = |flags: &[Flags]| -> String {
            if flags.is_empty() {
                "none".to_string()
            } else {
                flags
                    .iter()
                    .map(Flags::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        write!(
            f,
            "client {}; server {}",
            side(&self.client),
            side(&self.server)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::{Client, Server};

    fn seg(conn: u32, from: Role, flags: &str, len: u32) -> Segment {
        Segment {
            at_us: 0,
            conn,
            from,
            flags: Flags::try_from(flags.to_string()).unwrap(),
            seq: 0,
            ack: 0,
            len,
        }
    }

    fn handshake(conn: u32) -> Vec<Segment> {
        vec![
            seg(conn, Client, "SYN", 0),
            seg(conn, Server, "SYN|ACK", 0),
            seg(conn, Client, "ACK", 0),
            seg(conn, Client, "PSH|ACK", 5),
        ]
    }

    fn shapes(segments: &[Segment]) -> Vec<String> {
        teardown_shapes(segments)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn four_and_three_segment_closes_differ() {
        let mut four = handshake(0);
        four.extend([
            seg(0, Client, "FIN|ACK", 0),
            seg(0, Server, "ACK", 0),
            seg(0, Server, "FIN|ACK", 0),
            seg(0, Client, "ACK", 0),
        ]);
        let mut three = handshake(0);
        three.extend([
            seg(0, Client, "FIN|ACK", 0),
            seg(0, Server, "FIN|ACK", 0),
            seg(0, Client, "ACK", 0),
        ]);
        assert_eq!(shapes(&four), ["client FIN|ACK, ACK; server ACK, FIN|ACK"]);
        assert_eq!(shapes(&three), ["client FIN|ACK, ACK; server FIN|ACK"]);
    }

    /// Per direction, so that which end's segment the capture saw first when both ends send at
    /// once does not change the shape; sizes and data before the teardown do not either.
    #[test]
    fn order_across_directions_and_sizes_do_not_count() {
        let mut a = handshake(0);
        a.extend([
            seg(0, Client, "FIN|ACK", 0),
            seg(0, Server, "FIN|ACK", 0),
            seg(0, Client, "ACK", 0),
            seg(0, Server, "ACK", 0),
        ]);
        let mut b = handshake(0);
        b[3].len = 500;
        b.extend([
            seg(0, Server, "FIN|ACK", 0),
            seg(0, Client, "FIN|ACK", 0),
            seg(0, Server, "ACK", 0),
            seg(0, Client, "ACK", 0),
        ]);
        assert_eq!(shapes(&a), shapes(&b));
    }

    #[test]
    fn a_reset_starts_a_teardown_and_an_open_connection_has_none() {
        let mut segs = handshake(0);
        segs.push(seg(0, Server, "RST|ACK", 0));
        segs.extend(handshake(1));
        assert_eq!(
            shapes(&segs),
            ["client none; server RST|ACK", "no FIN or RST"]
        );
        let all = teardown_shapes(&segs);
        assert_eq!(all[0].first, Some(4));
        assert!(all[0].covers(4, &segs[4]) && !all[0].covers(3, &segs[3]));
        assert!(!all[1].covers(5, &segs[5]));
    }
}
