//! See the wire: every frame on the case's loopback.
//!
//! The runner opens the capture after it has isolated the case and before it forks the sides,
//! so that nothing the sides do is missed, and drains it while it conducts them and once more
//! after both are done.
//!
//! On Linux it is an AF_PACKET socket on the namespace's lo. Inside its own network namespace
//! the runner has CAP_NET_RAW, on the unprivileged user-namespace path too (`packet_create()`
//! asks the namespace's owner, not the host). On the host's network (no namespace) there is no
//! capture on Linux, and the wire facts are skipped with the reason. Loopback shows each packet
//! twice: once as it leaves (PACKET_OUTGOING) and once as it arrives (PACKET_HOST). A socket
//! filter keeps the outgoing copy only, stamped when it was transmitted, so that each segment
//! is counted once.
//!
//! On FreeBSD and macOS it is BPF on the host's lo0 ([`super::bpf`]), where the process may
//! open a BPF device (root); otherwise the wire facts are skipped with the reason. lo0 is
//! shared with other programs and with the cases running beside this one, so the runner keeps
//! only the frames of connections with an end on a port the case's sides used, in the
//! families of the instance's kind ([`Capture::keep_ports`]): an IPv4 and an IPv6 socket may
//! hold the same port at once, so the two instances of a case running side by side may both
//! be given it.

use crate::kind::Family;
use crate::report::Isolation;
use std::collections::BTreeSet;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

/// Set to `off` to run without a capture (to measure what it costs); wire facts are then
/// skipped with that reason.
pub const CAPTURE_ENV: &str = "SOCKCONF_CAPTURE";

/// The most of a frame that is kept; loopback frames are at most 64 KiB.
pub const SNAPLEN: u32 = 65535;

/// One captured frame, as the kernel transmitted it on lo (with lo's zeroed Ethernet header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The kernel's realtime stamp, in nanoseconds since the epoch.
    pub epoch_ns: u64,
    /// The frame, cut at [`SNAPLEN`] bytes.
    pub data: Vec<u8>,
    /// Its whole length.
    pub orig_len: u32,
}

/// An open capture on the case's loopback and the frames drained from it so far.
pub struct Capture {
    handle: imp::Handle,
    frames: Vec<Frame>,
    /// When set, only TCP frames with an end on one of these ports are kept.
    ports: Option<Kept>,
}

/// The frames a capture on a shared loopback keeps: TCP over one of `families` with an end on
/// one of `ports`.
struct Kept {
    ports: BTreeSet<u16>,
    families: &'static [Family],
}

impl Kept {
    fn keeps(&self, frame: &Frame) -> bool {
        super::segment::tcp_ends(&frame.data).is_some_and(|(src, dst)| {
            let family = if src.is_ipv4() {
                Family::Inet
            } else {
                Family::Inet6
            };
            self.families.contains(&family)
                && (self.ports.contains(&src.port()) || self.ports.contains(&dst.port()))
        })
    }
}

impl Capture {
    /// Open the capture, or say why there is none.
    pub fn open(isolation: &Isolation) -> Result<Capture, String> {
        if std::env::var(CAPTURE_ENV).as_deref() == Ok("off") {
            return Err(format!("the capture is turned off ({CAPTURE_ENV}=off)"));
        }
        match isolation {
            Isolation::Host { why } if !imp::ON_HOST_LOOPBACK => {
                return Err(format!(
                    "the capture needs the case's own network namespace, and there is none ({why})"
                ))
            }
            _ => {}
        }
        imp::open().map(|handle| Capture {
            handle,
            frames: vec![],
            ports: None,
        })
    }

    /// From now on keep only the frames of TCP connections over `families` (those of the
    /// instance's kind, [`Family::of`]) with an end on one of `ports` (those the case's sides
    /// bound, listened on or connected from), dropping the others already drained: on the
    /// host's loopback, other programs' traffic passes too.
    pub fn keep_ports(
        &mut self,
        ports: impl IntoIterator<Item = u16>,
        families: &'static [Family],
    ) {
        let kept = Kept {
            ports: ports.into_iter().collect(),
            families,
        };
        self.frames.retain(|f| kept.keeps(f));
        self.ports = Some(kept);
    }

    /// Read every frame queued now, without blocking.
    pub fn drain(&mut self) {
        let from = self.frames.len();
        imp::drain(&self.handle, &mut self.frames);
        if let Some(kept) = &self.ports {
            let mut new = self.frames.split_off(from);
            new.retain(|f| kept.keeps(f));
            self.frames.extend(new);
        }
    }

    /// Wait up to `timeout` for a frame to be queued; true if one is.
    pub fn wait(&self, timeout: Duration) -> bool {
        crate::observe::sock::poll_once(&self.handle, libc::POLLIN, timeout) & libc::POLLIN != 0
    }

    /// How many frames the kernel dropped because the capture's buffer was full.
    pub fn lost(&self) -> u32 {
        imp::lost(&self.handle)
    }

    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }
}

impl AsFd for Capture {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.handle.as_fd()
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use super::{Frame, SNAPLEN};
    use nix::errno::Errno;
    use nix::sys::socket::{recvmsg, ControlMessageOwned, LinkAddr, MsgFlags};
    use std::io::IoSliceMut;
    pub use std::os::fd::OwnedFd as Handle;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

    /// Without a namespace of its own, the runner does not capture (AF_PACKET on the host's lo
    /// needs CAP_NET_RAW over the host).
    pub const ON_HOST_LOOPBACK: bool = false;

    /// linux/filter.h: classic BPF opcodes (class | size | mode) and the ancillary offset of
    /// the packet type.
    const BPF_LD: u16 = 0x00;
    const BPF_B: u16 = 0x10;
    const BPF_ABS: u16 = 0x20;
    const BPF_LD_B_ABS: u16 = BPF_LD | BPF_B | BPF_ABS;
    const BPF_JEQ_K: u16 = 0x05 | 0x10;
    const BPF_RET_K: u16 = 0x06;
    const SKF_AD_PKTTYPE: u32 = (-0x1000i32 + 4) as u32;

    /// As much capture buffer as we may have: the runner drains it as it goes, but a case
    /// that moves a lot of data should not lose frames between two drains.
    const RCVBUF: libc::c_int = 8 << 20;

    pub fn open() -> Result<OwnedFd, String> {
        // Protocol 0 receives nothing until bound, so the filter is in place before the
        // first frame is queued.
        // SAFETY: socket() with constant arguments.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if raw < 0 {
            let e = Errno::last();
            return Err(match e {
                Errno::EPERM | Errno::EACCES => {
                    format!("socket(AF_PACKET): {e:?}: no CAP_NET_RAW in the case's namespace")
                }
                _ => format!("socket(AF_PACKET): {e:?}"),
            });
        }
        // SAFETY: a descriptor we just created and own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let outgoing_only = [
            filter(BPF_LD_B_ABS, 0, 0, SKF_AD_PKTTYPE),
            filter(BPF_JEQ_K, 0, 1, libc::PACKET_OUTGOING as u32),
            filter(BPF_RET_K, 0, 0, SNAPLEN),
            filter(BPF_RET_K, 0, 0, 0),
        ];
        let prog = libc::sock_fprog {
            len: outgoing_only.len() as u16,
            filter: outgoing_only.as_ptr() as *mut libc::sock_filter,
        };
        setsockopt(raw, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)
            .map_err(|e| format!("SO_ATTACH_FILTER: {e:?}"))?;
        setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            &1 as &libc::c_int,
        )
        .map_err(|e| format!("SO_TIMESTAMPNS: {e:?}"))?;
        // FORCE needs CAP_NET_ADMIN over the host; unprivileged, rmem_max caps the request.
        if setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &RCVBUF).is_err() {
            let _ = setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, &RCVBUF);
        }
        // SAFETY: a NUL-terminated name.
        let lo = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
        if lo == 0 {
            return Err(format!("if_nametoindex(lo): {:?}", Errno::last()));
        }
        // SAFETY: sockaddr_ll is plain old data.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = lo as i32;
        // SAFETY: bind with an address we own and its size.
        let rc = unsafe {
            libc::bind(
                raw,
                &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        Errno::result(rc).map_err(|e| format!("bind(AF_PACKET, lo): {e:?}"))?;
        Ok(fd)
    }

    fn filter(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
        libc::sock_filter { code, jt, jf, k }
    }

    fn setsockopt<T>(fd: RawFd, level: i32, name: i32, value: &T) -> nix::Result<()> {
        // SAFETY: `value` is a live T of the size passed.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                value as *const T as *const libc::c_void,
                std::mem::size_of::<T>() as libc::socklen_t,
            )
        };
        Errno::result(rc).map(|_| ())
    }

    pub fn drain(fd: &OwnedFd, frames: &mut Vec<Frame>) {
        let mut buf = vec![0u8; SNAPLEN as usize];
        let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
        loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = match recvmsg::<LinkAddr>(
                fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC,
            ) {
                Ok(msg) => msg,
                Err(Errno::EINTR) => continue,
                Err(_) => return,
            };
            let outgoing = msg
                .address
                .is_some_and(|a| a.pkttype() == libc::PACKET_OUTGOING);
            let stamp = msg.cmsgs().ok().and_then(|mut cs| {
                cs.find_map(|c| match c {
                    ControlMessageOwned::ScmTimestampns(ts) => {
                        Some(ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64)
                    }
                    _ => None,
                })
            });
            let orig_len = msg.bytes as u32;
            if outgoing {
                let kept = orig_len.min(SNAPLEN) as usize;
                frames.push(Frame {
                    epoch_ns: stamp.unwrap_or_else(crate::observe::clock::realtime_ns),
                    data: buf[..kept].to_vec(),
                    orig_len,
                });
            }
        }
    }

    pub fn lost(fd: &OwnedFd) -> u32 {
        // SAFETY: tpacket_stats is plain old data; the kernel fills at most `len` bytes.
        unsafe {
            let mut stats: libc::tpacket_stats = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
            let rc = libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                &mut stats as *mut _ as *mut libc::c_void,
                &mut len,
            );
            if rc == 0 {
                stats.tp_drops
            } else {
                0
            }
        }
    }
}

#[cfg(any(target_os = "freebsd", target_os = "macos"))]
mod imp {
    use super::Frame;
    use crate::observe::bpf::device;
    pub use device::Device as Handle;

    /// There are no namespaces: BPF watches the host's lo0.
    pub const ON_HOST_LOOPBACK: bool = true;

    pub fn open() -> Result<Handle, String> {
        device::open()
    }

    pub fn drain(device: &Handle, frames: &mut Vec<Frame>) {
        device.drain(frames)
    }

    pub fn lost(device: &Handle) -> u32 {
        device.lost()
    }
}

#[cfg(not(any(target_os = "linux", target_os = "freebsd", target_os = "macos")))]
mod imp {
    use super::Frame;
    pub use std::os::fd::OwnedFd as Handle;

    pub const ON_HOST_LOOPBACK: bool = false;

    pub fn open() -> Result<Handle, String> {
        Err(format!("no capture on {}", std::env::consts::OS))
    }

    pub fn drain(_fd: &Handle, _frames: &mut Vec<Frame>) {}

    pub fn lost(_fd: &Handle) -> u32 {
        0
    }
}

/// Write `frames` as a pcap file (Ethernet link type, nanosecond stamps) that Wireshark and
/// tshark open: first as [`crate::report::partial_path`], renamed to `path` when complete, so
/// that a runner killed while writing leaves no truncated file under the real name.
pub fn write_pcap(path: &std::path::Path, frames: &[Frame]) -> std::io::Result<()> {
    let partial = crate::report::partial_path(path);
    write_pcap_to(&partial, frames)?;
    std::fs::rename(&partial, path)
}

fn write_pcap_to(path: &std::path::Path, frames: &[Frame]) -> std::io::Result<()> {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    use pcap_file::{DataLink, Endianness, TsResolution};
    let header = PcapHeader {
        snaplen: SNAPLEN,
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::NanoSecond,
        endianness: Endianness::native(),
        ..PcapHeader::default()
    };
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut writer = PcapWriter::with_header(file, header).map_err(std::io::Error::other)?;
    for f in frames {
        let packet = PcapPacket::new(Duration::from_nanos(f.epoch_ns), f.orig_len, &f.data);
        writer
            .write_packet(&packet)
            .map_err(std::io::Error::other)?;
    }
    use std::io::Write;
    writer.into_writer().flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    /// A TCP frame between loopback ports `src` and `dst`: 127.0.0.1, or ::1 when `v6`.
    fn tcp_frame(v6: bool, src: u16, dst: u16) -> Frame {
        let loopback = std::net::Ipv6Addr::LOCALHOST.octets();
        let ether = PacketBuilder::ethernet2([0; 6], [0; 6]);
        let ip = if v6 {
            ether.ipv6(loopback, loopback, 64)
        } else {
            ether.ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
        };
        let mut data = vec![];
        ip.tcp(src, dst, 1, 65535).write(&mut data, &[]).unwrap();
        Frame {
            epoch_ns: 0,
            orig_len: data.len() as u32,
            data,
        }
    }

    /// On a shared loopback a case keeps the connections with an end on its ports, in both
    /// directions, over its kind's families, and drops everyone else's: the same ports over
    /// the other family are another instance's.
    #[test]
    fn keeps_the_connections_on_the_case_s_ports_and_families() {
        use crate::kind::Kind;
        let kept = |kind| Kept {
            ports: BTreeSet::from([5000, 40000]),
            families: Family::of(kind),
        };
        let v4 = kept(Kind::Ipv4);
        assert!(v4.keeps(&tcp_frame(false, 40000, 5000)));
        assert!(v4.keeps(&tcp_frame(false, 5000, 40001)));
        assert!(!v4.keeps(&tcp_frame(false, 6000, 6001)));
        assert!(!v4.keeps(&tcp_frame(true, 40000, 5000)));
        let v6 = kept(Kind::Ipv6);
        assert!(v6.keeps(&tcp_frame(true, 40000, 5000)));
        assert!(v6.keeps(&tcp_frame(true, 5000, 40001)));
        assert!(!v6.keeps(&tcp_frame(true, 6000, 6001)));
        assert!(!v6.keeps(&tcp_frame(false, 40000, 5000)));
        let dual = kept(Kind::DualStack);
        assert!(
            dual.keeps(&tcp_frame(false, 40000, 5000)) && dual.keeps(&tcp_frame(true, 40000, 5000))
        );
        let mut not_tcp = tcp_frame(false, 5000, 5000);
        not_tcp.data.truncate(20);
        assert!(!v4.keeps(&not_tcp));
    }
}
