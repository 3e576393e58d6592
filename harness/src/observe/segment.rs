//! Captured frames as TCP segments: who sent each, its flags, relative seq/ack and length.
//!
//! Roles come from the handshake, not from the case: the end that sends a SYN without ACK is
//! the client of that connection. Sequence numbers are relative to each end's initial sequence
//! number, as Wireshark shows them.

use super::capture::Frame;
use super::clock::Origin;
use super::Role;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// TCP header flags, spelled `FIN|ACK` in reports and expectations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Flags(u8);

impl Flags {
    pub const FIN: Flags = Flags(0x01);
    pub const SYN: Flags = Flags(0x02);
    pub const RST: Flags = Flags(0x04);
    pub const PSH: Flags = Flags(0x08);
    pub const ACK: Flags = Flags(0x10);
    pub const URG: Flags = Flags(0x20);
    pub const ECE: Flags = Flags(0x40);
    pub const CWR: Flags = Flags(0x80);
    /// In the order tcpdump prints them.
    const NAMES: [(Flags, &'static str); 8] = [
        (Flags::SYN, "SYN"),
        (Flags::FIN, "FIN"),
        (Flags::RST, "RST"),
        (Flags::PSH, "PSH"),
        (Flags::URG, "URG"),
        (Flags::ACK, "ACK"),
        (Flags::ECE, "ECE"),
        (Flags::CWR, "CWR"),
    ];

    pub fn has(self, flag: Flags) -> bool {
        self.0 & flag.0 == flag.0
    }

    pub fn with(self, flag: Flags) -> Flags {
        Flags(self.0 | flag.0)
    }
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Flags::NAMES
            .iter()
            .filter(|(flag, _)| self.has(*flag))
            .map(|(_, name)| *name)
            .collect();
        f.write_str(&names.join("|"))
    }
}

impl From<Flags> for String {
    fn from(f: Flags) -> String {
        f.to_string()
    }
}

impl TryFrom<String> for Flags {
    type Error = String;
    fn try_from(s: String) -> Result<Flags, String> {
        s.split('|')
            .filter(|n| !n.is_empty())
            .try_fold(Flags::default(), |acc, name| {
                Flags::NAMES
                    .iter()
                    .find(|(_, n)| *n == name)
                    .map(|(flag, _)| acc.with(*flag))
                    .ok_or_else(|| format!("unknown TCP flag {name}"))
            })
    }
}

/// One TCP segment on the case's loopback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// Microseconds from the case's origin (see [`super::clock`]).
    pub at_us: u64,
    /// Which connection, numbered in the order their first segment was seen.
    pub conn: u32,
    /// The end that sent it.
    pub from: Role,
    pub flags: Flags,
    /// Relative to the sender's initial sequence number.
    pub seq: u32,
    /// Relative to the receiver's initial sequence number; 0 without ACK.
    pub ack: u32,
    /// Payload bytes.
    pub len: u32,
}

impl Segment {
    /// The sequence number just past this segment (SYN and FIN count one each).
    pub fn end_seq(&self) -> u32 {
        let syn_fin = u32::from(self.flags.has(Flags::SYN)) + u32::from(self.flags.has(Flags::FIN));
        self.seq.wrapping_add(self.len).wrapping_add(syn_fin)
    }
}

/// What one connection looks like while frames are read in order.
struct Conn {
    client: SocketAddr,
    server: SocketAddr,
    client_isn: Option<u32>,
    server_isn: Option<u32>,
}

/// The TCP segments among `frames`, in capture order; other frames are left out.
pub fn parse(frames: &[Frame], origin: Origin) -> Vec<Segment> {
    let mut conns: Vec<Conn> = vec![];
    let mut segments = vec![];
    for frame in frames {
        let Some((src, dst, tcp)) = tcp_of(&frame.data) else {
            continue;
        };
        let (flags, seq, ack, len) = tcp;
        let is_new_syn = flags.has(Flags::SYN) && !flags.has(Flags::ACK);
        let found = conns.iter().rposition(|c| {
            (c.client == src && c.server == dst) || (c.client == dst && c.server == src)
        });
        // A SYN on a known pair with another ISN opens a new connection (the pair reused).
        let index = match found {
            Some(i) if !(is_new_syn && conns[i].client_isn.is_some_and(|isn| isn != seq)) => i,
            _ => {
                // Without a SYN to go by, the sender of the first segment seen is called the
                // client; with the capture open before the sides start this does not happen.
                let from_server = flags.has(Flags::SYN) && flags.has(Flags::ACK);
                let (client, server) = if from_server { (dst, src) } else { (src, dst) };
                conns.push(Conn {
                    client,
                    server,
                    client_isn: None,
                    server_isn: None,
                });
                conns.len() - 1
            }
        };
        let conn = &mut conns[index];
        let from = if conn.client == src {
            Role::Client
        } else {
            Role::Server
        };
        let (own_isn, peer_isn) = match from {
            Role::Client => (&mut conn.client_isn, conn.server_isn),
            Role::Server => (&mut conn.server_isn, conn.client_isn),
        };
        // The ISN is the SYN's sequence number, or the first one seen from that end.
        let own = *own_isn.get_or_insert(seq);
        segments.push(Segment {
            at_us: origin.offset_us(frame.epoch_ns),
            conn: index as u32,
            from,
            flags,
            seq: seq.wrapping_sub(own),
            ack: match (flags.has(Flags::ACK), peer_isn) {
                (false, _) => 0,
                (true, Some(isn)) => ack.wrapping_sub(isn),
                (true, None) => ack,
            },
            len,
        });
    }
    segments
}

/// The source and destination (address and port) of a TCP frame.
pub fn tcp_ends(data: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    tcp_of(data).map(|(src, dst, _)| (src, dst))
}

/// Source, destination, and (flags, seq, ack, payload length) of a TCP frame.
type TcpOf = (SocketAddr, SocketAddr, (Flags, u32, u32, u32));

fn tcp_of(data: &[u8]) -> Option<TcpOf> {
    let packet = SlicedPacket::from_ethernet(data).ok()?;
    let (src_ip, dst_ip): (IpAddr, IpAddr) = match packet.net? {
        NetSlice::Ipv4(ip) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        NetSlice::Ipv6(ip) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        NetSlice::Arp(_) => return None,
    };
    let TransportSlice::Tcp(tcp) = packet.transport? else {
        return None;
    };
    let flags = [
        (tcp.fin(), Flags::FIN),
        (tcp.syn(), Flags::SYN),
        (tcp.rst(), Flags::RST),
        (tcp.psh(), Flags::PSH),
        (tcp.ack(), Flags::ACK),
        (tcp.urg(), Flags::URG),
        (tcp.ece(), Flags::ECE),
        (tcp.cwr(), Flags::CWR),
    ]
    .into_iter()
    .filter(|(set, _)| *set)
    .fold(Flags::default(), |acc, (_, f)| acc.with(f));
    Some((
        SocketAddr::new(src_ip, tcp.source_port()),
        SocketAddr::new(dst_ip, tcp.destination_port()),
        (
            flags,
            tcp.sequence_number(),
            tcp.acknowledgment_number(),
            tcp.payload().len() as u32,
        ),
    ))
}

/// True once every connection seen has ended on the wire: reset, or both FINs sent and
/// acknowledged. The runner keeps draining the capture after the sides are done until then
/// (or a short deadline), so that a reply the kernel sends a moment later is not missed.
pub fn all_ended(segments: &[Segment]) -> bool {
    let conns = segments.iter().map(|s| s.conn).max().map_or(0, |m| m + 1);
    (0..conns).all(|conn| {
        let of_conn = || segments.iter().filter(move |s| s.conn == conn);
        if of_conn().any(|s| s.flags.has(Flags::RST)) {
            return true;
        }
        [Role::Client, Role::Server].into_iter().all(|end| {
            let Some(fin) = of_conn().find(|s| s.from == end && s.flags.has(Flags::FIN)) else {
                return false;
            };
            of_conn().any(|s| {
                s.from != end && s.flags.has(Flags::ACK) && seq_at_or_after(s.ack, fin.end_seq())
            })
        })
    })
}

/// `a` is at or after `b` in sequence space (RFC 1982 serial arithmetic).
pub fn seq_at_or_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    /// A frame as lo carries it, from `src_port` to `dst_port` on 127.0.0.1.
    fn frame(src_port: u16, dst_port: u16, flags: Flags, seq: u32, ack: u32, len: usize) -> Frame {
        let mut builder = PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
            .tcp(src_port, dst_port, seq, 65495);
        if flags.has(Flags::SYN) {
            builder = builder.syn();
        }
        if flags.has(Flags::FIN) {
            builder = builder.fin();
        }
        if flags.has(Flags::RST) {
            builder = builder.rst();
        }
        if flags.has(Flags::PSH) {
            builder = builder.psh();
        }
        if flags.has(Flags::ACK) {
            builder = builder.ack(ack);
        }
        let payload = vec![b'x'; len];
        let mut data = vec![];
        builder.write(&mut data, &payload).unwrap();
        Frame {
            epoch_ns: 1_000_000,
            orig_len: data.len() as u32,
            data,
        }
    }

    fn flags(s: &str) -> Flags {
        Flags::try_from(s.to_string()).unwrap()
    }

    #[test]
    fn flags_round_trip_in_tcpdump_order() {
        assert_eq!(flags("ACK|FIN").to_string(), "FIN|ACK");
        assert_eq!(flags("SYN|ACK").to_string(), "SYN|ACK");
        assert!(Flags::try_from("NOPE".to_string()).is_err());
    }

    #[test]
    fn roles_and_relative_numbers_come_from_the_handshake() {
        let frames = [
            frame(40000, 80, flags("SYN"), 1000, 0, 0),
            frame(80, 40000, flags("SYN|ACK"), 5000, 1001, 0),
            frame(40000, 80, flags("ACK"), 1001, 5001, 0),
            frame(40000, 80, flags("PSH|ACK"), 1001, 5001, 5),
            frame(40000, 80, flags("FIN|ACK"), 1006, 5001, 0),
            frame(80, 40000, flags("FIN|ACK"), 5001, 1007, 0),
            frame(40000, 80, flags("ACK"), 1007, 5002, 0),
        ];
        let segs = parse(&frames, Origin { epoch_ns: 0 });
        let summary: Vec<(Role, String, u32, u32, u32)> = segs
            .iter()
            .map(|s| (s.from, s.flags.to_string(), s.seq, s.ack, s.len))
            .collect();
        assert_eq!(
            summary,
            [
                (Role::Client, "SYN".into(), 0, 0, 0),
                (Role::Server, "SYN|ACK".into(), 0, 1, 0),
                (Role::Client, "ACK".into(), 1, 1, 0),
                (Role::Client, "PSH|ACK".into(), 1, 1, 5),
                (Role::Client, "FIN|ACK".into(), 6, 1, 0),
                (Role::Server, "FIN|ACK".into(), 1, 7, 0),
                (Role::Client, "ACK".into(), 7, 2, 0),
            ]
        );
        assert_eq!(segs[0].at_us, 1000);
        assert!(all_ended(&segs));
        assert!(
            !all_ended(&segs[..6]),
            "the server's FIN is not acknowledged"
        );
    }

    #[test]
    fn a_reset_ends_a_connection() {
        let frames = [
            frame(40000, 80, flags("SYN"), 1, 0, 0),
            frame(80, 40000, flags("RST|ACK"), 0, 2, 0),
        ];
        let segs = parse(&frames, Origin { epoch_ns: 0 });
        assert_eq!(segs[1].from, Role::Server);
        assert!(all_ended(&segs));
    }
}
