//! The wire on the BSDs: BPF on lo0, the capture backend of FreeBSD and macOS.
//!
//! A read() of a BPF device returns a buffer of records, each a `struct bpf_hdr`, the packet
//! (cut at the snap length), and padding to BPF_WORDALIGN. lo0's link type is DLT_NULL: a
//! 4-byte address family in host byte order, then the IP packet. Each record is turned into a
//! [`Frame`] with a zeroed Ethernet header in place of the address family, as Linux's lo
//! carries it, so that the segment parser and the pcap writer need not know which OS captured.
//!
//! Each loopback packet is tapped once on both kernels, so no direction filter is needed (and
//! none must be set: FreeBSD taps it as received):
//! - FreeBSD (sys/net/if_loop.c, stable/14): `looutput()` hands the packet to `if_simloop()`,
//!   which sets `m_pkthdr.rcvif = ifp` and calls `bpf_mtap2(V_loif->if_bpf, &af, 4, m)` once
//!   before queueing it to netisr; the input path does not tap lo0 again;
//! - XNU (bsd/net/if_loop.c, xnu-11417.121.6): `lo_output()`/`lo_pre_enqueue()` tap with
//!   `LO_BPF_TAP_OUT` → `bpf_tap_out(lo_ifp, DLT_NULL, …)`, and `lo_set_bpf_tap()` leaves no
//!   input tap (BPF_TAP_INPUT sets no callback).
//!
//! Stamps are the default BPF_T_MICROTIME on FreeBSD (a `struct timeval` of `microtime()`, the
//! realtime clock) and `microtime()` in a `struct BPF_TIMEVAL` on XNU: the realtime clock the
//! case's timeline uses ([`super::clock`]), at microsecond resolution.
//!
//! The parsers compile everywhere and are tested on Linux over fixtures; the device is opened
//! on FreeBSD and macOS only.

use super::capture::Frame;

/// Where a `struct bpf_hdr`'s fields sit, and the alignment its records are padded to.
#[derive(Clone, Copy, Debug)]
pub struct HdrLayout {
    /// `bh_tstamp`'s seconds and microseconds: offset and width (4 or 8 bytes).
    pub sec: (usize, usize),
    pub usec: (usize, usize),
    pub caplen_at: usize,
    pub datalen_at: usize,
    pub hdrlen_at: usize,
    /// BPF_ALIGNMENT: BPF_WORDALIGN rounds each record up to a multiple of it.
    pub align: usize,
}

/// FreeBSD LP64 (sys/net/bpf.h, stable/14): `struct bpf_hdr { struct timeval bh_tstamp;
/// bpf_u_int32 bh_caplen; bpf_u_int32 bh_datalen; u_short bh_hdrlen; }` with a 16-byte timeval
/// (tv_sec time_t at 0, tv_usec suseconds_t (long) at 8): bh_caplen at 16, bh_datalen at 20,
/// bh_hdrlen at 24; `BPF_ALIGNMENT` is `sizeof(long)`, 8.
pub const FREEBSD_LP64: HdrLayout = HdrLayout {
    sec: (0, 8),
    usec: (8, 8),
    caplen_at: 16,
    datalen_at: 20,
    hdrlen_at: 24,
    align: 8,
};

/// XNU LP64 (bsd/net/bpf.h, xnu-11417.121.6): `struct bpf_hdr { struct BPF_TIMEVAL bh_tstamp;
/// … }` where BPF_TIMEVAL is `timeval32` under `__LP64__` (two int32_t: tv_sec at 0, tv_usec
/// at 4): bh_caplen at 8, bh_datalen at 12, bh_hdrlen at 16; `BPF_ALIGNMENT` is
/// `sizeof(int32_t)`, 4.
pub const XNU_LP64: HdrLayout = HdrLayout {
    sec: (0, 4),
    usec: (4, 4),
    caplen_at: 8,
    datalen_at: 12,
    hdrlen_at: 16,
    align: 4,
};

/// DLT_NULL's address families (sys/sys/socket.h of each): AF_INET is 2 on both; AF_INET6 is
/// 28 on FreeBSD and 30 on XNU. Each kernel writes its own: FreeBSD's `looutput()` passes the
/// destination's family to `if_simloop()`, which taps it; XNU's `lo_pre_output()` puts the
/// protocol family (PF_INET6 = AF_INET6) in the loopback header that `LO_BPF_TAP_OUT` taps. 24,
/// AF_INET6 on NetBSD and OpenBSD (which libpcap also reads as IPv6 in DLT_NULL files), comes
/// from neither. Either BSD's value is read on both: no other family on lo0 carries those
/// numbers (28 and 30 are IPv6 on one, unused on lo0 on the other).
pub const AF_INET: u32 = 2;
pub const FREEBSD_AF_INET6: u32 = 28;
pub const XNU_AF_INET6: u32 = 30;

/// The ethertypes the Ethernet header written in place of DLT_NULL's carries.
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;

fn uint(buf: &[u8], (at, width): (usize, usize)) -> Option<u64> {
    let b = buf.get(at..at + width)?;
    Some(match width {
        4 => u32::from_ne_bytes(b.try_into().ok()?).into(),
        8 => u64::from_ne_bytes(b.try_into().ok()?),
        _ => return None,
    })
}

/// The records in one read() of a BPF device, as (stamp in ns since the epoch, captured
/// bytes, original length). Stops at the first record that does not fit (a read returns
/// whole records, so that only happens on a corrupt buffer).
pub fn records<'a>(buf: &'a [u8], layout: &HdrLayout) -> Vec<(u64, &'a [u8], u32)> {
    let mut out = vec![];
    let mut at = 0;
    while at < buf.len() {
        let hdr = &buf[at..];
        let (Some(sec), Some(usec), Some(caplen), Some(datalen), Some(hdrlen)) = (
            uint(hdr, layout.sec),
            uint(hdr, layout.usec),
            uint(hdr, (layout.caplen_at, 4)),
            uint(hdr, (layout.datalen_at, 4)),
            hdr.get(layout.hdrlen_at..layout.hdrlen_at + 2)
                .map(|b| u16::from_ne_bytes([b[0], b[1]])),
        ) else {
            break;
        };
        let (caplen, hdrlen) = (caplen as usize, usize::from(hdrlen));
        let Some(data) = hdr.get(hdrlen..hdrlen + caplen) else {
            break;
        };
        out.push((sec * 1_000_000_000 + usec * 1000, data, datalen as u32));
        let step = word_align(hdrlen + caplen, layout.align);
        if step == 0 {
            break;
        }
        at += step;
    }
    out
}

/// BPF_WORDALIGN.
pub fn word_align(n: usize, align: usize) -> usize {
    (n + align - 1) & !(align - 1)
}

/// A DLT_NULL packet (4-byte address family in host order, then IP) as an Ethernet frame with
/// zeroed addresses, as Linux's lo carries it; `None` for a family that is not IP.
pub fn dlt_null_to_ethernet(packet: &[u8]) -> Option<Vec<u8>> {
    let family = u32::from_ne_bytes(packet.get(..4)?.try_into().ok()?);
    let ethertype = match family {
        AF_INET => ETHERTYPE_IPV4,
        FREEBSD_AF_INET6 | XNU_AF_INET6 => ETHERTYPE_IPV6,
        _ => return None,
    };
    let mut frame = vec![0u8; 12];
    frame.extend(ethertype.to_be_bytes());
    frame.extend(&packet[4..]);
    Some(frame)
}

/// The frames in one read() of a BPF device on lo0, the Ethernet header (10 bytes more than
/// DLT_NULL's 4) counted in their lengths.
pub fn frames(buf: &[u8], layout: &HdrLayout) -> Vec<Frame> {
    records(buf, layout)
        .into_iter()
        .filter_map(|(epoch_ns, data, datalen)| {
            dlt_null_to_ethernet(data).map(|data| Frame {
                epoch_ns,
                data,
                orig_len: datalen + 10,
            })
        })
        .collect()
}

/// The BPF device: open, bind to lo0, read. FreeBSD and macOS only.
#[cfg(any(target_os = "freebsd", target_os = "macos"))]
pub mod device {
    use super::super::capture::{Frame, SNAPLEN};
    use super::HdrLayout;
    use nix::errno::Errno;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    #[cfg(target_os = "freebsd")]
    pub const LAYOUT: HdrLayout = super::FREEBSD_LP64;
    #[cfg(target_os = "macos")]
    pub const LAYOUT: HdrLayout = super::XNU_LP64;

    /// The buffer asked for with BIOCSBLEN; each kernel clamps it to its `bpf_maxbufsize`
    /// (512 KiB by default on both). The runner drains it as it goes.
    const BUFFER: libc::c_uint = 512 * 1024;

    /// An open BPF device on lo0, and the read size it demands (its buffer length).
    pub struct Device {
        pub fd: OwnedFd,
        buffer: usize,
    }

    fn ioctl<T>(fd: &OwnedFd, request: libc::c_ulong, arg: &mut T) -> nix::Result<()> {
        // SAFETY: each request below takes a pointer to a T of the size its number encodes.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg as *mut T) };
        Errno::result(rc).map(|_| ())
    }

    /// A BPF device: FreeBSD's /dev/bpf clones one per open; macOS has /dev/bpf0, /dev/bpf1,
    /// …, each busy while another process has it open.
    fn open_device() -> Result<OwnedFd, String> {
        let open = |path: &str| {
            let c = std::ffi::CString::new(path).expect("no NUL");
            // SAFETY: open() of a NUL-terminated path.
            let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
            if fd < 0 {
                Err(Errno::last())
            } else {
                // SAFETY: a descriptor we just opened and own.
                Ok(unsafe { OwnedFd::from_raw_fd(fd) })
            }
        };
        let denied = |path: &str, e: Errno| {
            format!("cannot open {path}: {e:?} (BPF needs root, or read access to the device)")
        };
        if cfg!(target_os = "freebsd") {
            return open("/dev/bpf").map_err(|e| denied("/dev/bpf", e));
        }
        for n in 0..256 {
            let path = format!("/dev/bpf{n}");
            match open(&path) {
                Ok(fd) => return Ok(fd),
                Err(Errno::EBUSY) => continue,
                Err(e) => return Err(denied(&path, e)),
            }
        }
        Err("every /dev/bpf0../dev/bpf255 is busy".into())
    }

    /// Open a BPF device on lo0: buffer size first (it must precede BIOCSETIF), then the
    /// interface, then immediate mode so that each packet can be read as soon as it is tapped.
    pub fn open() -> Result<Device, String> {
        let fd = open_device()?;
        let mut size = BUFFER;
        ioctl(&fd, libc::BIOCSBLEN, &mut size).map_err(|e| format!("BIOCSBLEN: {e:?}"))?;
        // struct ifreq: 16 bytes of name, then a 16-byte union; only the name is read.
        let mut ifreq = [0u8; 32];
        ifreq[..3].copy_from_slice(b"lo0");
        ioctl(&fd, libc::BIOCSETIF, &mut ifreq).map_err(|e| format!("BIOCSETIF lo0: {e:?}"))?;
        let mut on: libc::c_uint = 1;
        ioctl(&fd, libc::BIOCIMMEDIATE, &mut on).map_err(|e| format!("BIOCIMMEDIATE: {e:?}"))?;
        let mut buffer: libc::c_uint = 0;
        ioctl(&fd, libc::BIOCGBLEN, &mut buffer).map_err(|e| format!("BIOCGBLEN: {e:?}"))?;
        // SAFETY: fcntl on our own descriptor.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
        // SAFETY: as above; a read then returns EAGAIN when nothing is queued.
        let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) };
        Errno::result(rc).map_err(|e| format!("O_NONBLOCK: {e:?}"))?;
        Ok(Device {
            fd,
            buffer: buffer as usize,
        })
    }

    impl std::os::fd::AsFd for Device {
        fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
            self.fd.as_fd()
        }
    }

    impl Device {
        /// Read every record queued now, without blocking. A read must ask for exactly the
        /// buffer length (bpfread() returns EINVAL otherwise).
        pub fn drain(&self, frames: &mut Vec<Frame>) {
            let mut buf = vec![0u8; self.buffer];
            loop {
                // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
                let n =
                    unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n <= 0 {
                    if n < 0 && Errno::last() == Errno::EINTR {
                        continue;
                    }
                    return;
                }
                frames.extend(super::frames(&buf[..n as usize], &LAYOUT).into_iter().map(
                    |mut f| {
                        f.data.truncate(SNAPLEN as usize);
                        f
                    },
                ));
            }
        }

        /// Packets the kernel dropped because the buffer was full (BIOCGSTATS' bs_drop).
        pub fn lost(&self) -> u32 {
            // struct bpf_stat { u_int bs_recv; u_int bs_drop; } on both.
            let mut stats = [0 as libc::c_uint; 2];
            match ioctl(&self.fd, libc::BIOCGSTATS, &mut stats) {
                Ok(()) => stats[1],
                Err(_) => 0,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    /// An IPv4 TCP packet from 127.0.0.1:`src` to 127.0.0.1:`dst`.
    fn ip_packet(src: u16, dst: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![];
        PacketBuilder::ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
            .tcp(src, dst, 1000, 65535)
            .syn()
            .write(&mut out, payload)
            .unwrap();
        out
    }

    /// The fixtures' own copy of each `struct bpf_hdr`, as `offsetof` gives it for the
    /// definitions (not the parser's constants, so that a wrong constant fails): the
    /// timestamp's two fields (offset, width), bh_caplen, bh_datalen, bh_hdrlen,
    /// SIZEOF_BPF_HDR, BPF_ALIGNMENT.
    struct Fixture {
        sec: (usize, usize),
        usec: (usize, usize),
        caplen: usize,
        datalen: usize,
        hdrlen: usize,
        sizeof_hdr: usize,
        align: usize,
    }

    const FREEBSD: Fixture = Fixture {
        sec: (0, 8),
        usec: (8, 8),
        caplen: 16,
        datalen: 20,
        hdrlen: 24,
        sizeof_hdr: 26,
        align: 8,
    };

    const XNU: Fixture = Fixture {
        sec: (0, 4),
        usec: (4, 4),
        caplen: 8,
        datalen: 12,
        hdrlen: 16,
        sizeof_hdr: 18,
        align: 4,
    };

    /// Bytes the fixtures' packets pretend to have lost to the snap length.
    const CUT: u64 = 7;

    /// One BPF record as bpf.c's catchpacket() writes it: the header, padding up to bh_hdrlen
    /// (SIZEOF_BPF_HDR + the link header, word-aligned, minus the link header), the DLT_NULL
    /// packet, and padding to the next word boundary.
    fn record(layout: &Fixture, sec: u64, usec: u64, family: u32, ip: &[u8]) -> Vec<u8> {
        let hdrlen = word_align(layout.sizeof_hdr + 4, layout.align) - 4;
        let mut packet = family.to_ne_bytes().to_vec();
        packet.extend(ip);
        let mut r = vec![0u8; hdrlen];
        let put = |r: &mut Vec<u8>, (at, width): (usize, usize), v: u64| {
            let bytes = v.to_ne_bytes();
            r[at..at + width].copy_from_slice(&bytes[..width]);
        };
        put(&mut r, layout.sec, sec);
        put(&mut r, layout.usec, usec);
        put(&mut r, (layout.caplen, 4), packet.len() as u64);
        // The original length differs from the captured one, as if the snap length had cut
        // the packet, so that reading one for the other shows.
        put(&mut r, (layout.datalen, 4), packet.len() as u64 + CUT);
        put(&mut r, (layout.hdrlen, 2), hdrlen as u64);
        r.extend(&packet);
        r.resize(word_align(r.len(), layout.align), 0);
        r
    }

    #[test]
    fn header_layouts_follow_the_structure_definitions() {
        // FreeBSD: a 16-byte timeval, then the two lengths and bh_hdrlen; the kernel's
        // SIZEOF_BPF_HDR is 26 and a DLT_NULL record's bh_hdrlen 32 - 4 = 28.
        assert_eq!(FREEBSD_LP64.caplen_at, 16);
        assert_eq!(word_align(FREEBSD_LP64.hdrlen_at + 2 + 4, 8) - 4, 28);
        // XNU: a timeval32 (8 bytes); SIZEOF_BPF_HDR 18, bh_hdrlen 24 - 4 = 20 with 4-byte
        // alignment, so the IP header starts 4-aligned after the 4-byte family.
        assert_eq!(XNU_LP64.caplen_at, 8);
        assert_eq!(word_align(XNU_LP64.hdrlen_at + 2 + 4, 4) - 4, 20);
    }

    /// An IPv6 TCP packet from [::1]:`src` to [::1]:`dst`, as lo0 carries it after DLT_NULL's
    /// family.
    fn ipv6_packet(src: u16, dst: u16, syn_ack: bool, payload: &[u8]) -> Vec<u8> {
        let loopback = std::net::Ipv6Addr::LOCALHOST.octets();
        let mut out = vec![];
        let tcp = PacketBuilder::ipv6(loopback, loopback, 64).tcp(src, dst, 9000, 65535);
        let tcp = if syn_ack { tcp.syn().ack(1001) } else { tcp };
        tcp.write(&mut out, payload).unwrap();
        out
    }

    fn two_records(fixture: &Fixture, layout: &HdrLayout, af_inet6: u32) {
        let first = ip_packet(40000, 5000, b"");
        let second = ip_packet(5000, 40000, b"hello");
        let mut buf = record(fixture, 1_700_000_000, 250_000, AF_INET, &first);
        let second_at = buf.len();
        buf.extend(record(fixture, 1_700_000_001, 7, AF_INET, &second));
        // Records start word-aligned.
        assert_eq!(second_at % fixture.align, 0);
        // A record of another family (not IP) is skipped; an IPv6 one is kept.
        buf.extend(record(fixture, 1_700_000_002, 0, 17, &[0u8; 20]));
        let v6 = ipv6_packet(6000, 40001, true, b"");
        buf.extend(record(fixture, 1_700_000_003, 0, af_inet6, &v6));

        let frames = frames(&buf, layout);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].epoch_ns, 1_700_000_000_250_000_000);
        assert_eq!(frames[1].epoch_ns, 1_700_000_001_000_007_000);
        assert_eq!(
            &frames[0].data[..14],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0]
        );
        assert_eq!(&frames[1].data[14..], &second[..]);
        assert_eq!(
            frames[1].orig_len as usize,
            14 + second.len() + CUT as usize
        );
        assert_eq!(&frames[2].data[12..14], &[0x86, 0xdd]);
        assert_eq!(&frames[2].data[14..], &v6[..]);

        // The segment parser reads them as it reads Linux's lo frames.
        let segs = crate::observe::segment::parse(
            &frames,
            crate::observe::clock::Origin {
                epoch_ns: 1_700_000_000_000_000_000,
            },
        );
        assert_eq!(segs[0].at_us, 250_000);
        assert_eq!(segs[0].flags.to_string(), "SYN");
        assert_eq!(segs[1].len, 5);
        assert_eq!(segs[2].flags.to_string(), "SYN|ACK");
        assert_eq!(segs[2].at_us, 3_000_000);
        let loopback = std::net::Ipv6Addr::LOCALHOST.into();
        assert_eq!(
            crate::observe::segment::tcp_ends(&frames[2].data),
            Some((
                std::net::SocketAddr::new(loopback, 6000),
                std::net::SocketAddr::new(loopback, 40001)
            ))
        );
    }

    /// A capture of an IPv6 connection on lo0 (FreeBSD's family number and XNU's), written as
    /// a pcap and read back: an Ethernet link type, and IPv6 TCP packets that etherparse reads
    /// as they were sent, as tcpdump and Wireshark then do.
    #[test]
    fn ipv6_frames_make_a_pcap_of_ipv6_packets() {
        use pcap_file::pcap::PcapReader;
        for (fixture, layout, af_inet6) in [
            (&FREEBSD, &FREEBSD_LP64, FREEBSD_AF_INET6),
            (&XNU, &XNU_LP64, XNU_AF_INET6),
        ] {
            let syn_ack = ipv6_packet(5000, 40000, true, b"");
            let data = ipv6_packet(40000, 5000, false, b"hello");
            let mut buf = record(fixture, 1_700_000_000, 1, af_inet6, &syn_ack);
            buf.extend(record(fixture, 1_700_000_000, 2, af_inet6, &data));
            let frames = frames(&buf, layout);
            let dir = std::env::temp_dir().join(format!(
                "sockconf-bpf-pcap-{}-{af_inet6}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("ipv6.pcap");
            crate::observe::capture::write_pcap(&path, &frames).unwrap();
            let mut reader = PcapReader::new(std::fs::File::open(&path).unwrap()).unwrap();
            assert_eq!(reader.header().datalink, pcap_file::DataLink::ETHERNET);
            let mut read = vec![];
            while let Some(packet) = reader.next_packet() {
                let packet = packet.unwrap();
                let sliced = etherparse::SlicedPacket::from_ethernet(&packet.data).unwrap();
                let Some(etherparse::NetSlice::Ipv6(ip)) = sliced.net else {
                    panic!("not an IPv6 packet: {:?}", sliced.net);
                };
                assert_eq!(ip.header().source_addr(), std::net::Ipv6Addr::LOCALHOST);
                let Some(etherparse::TransportSlice::Tcp(tcp)) = sliced.transport else {
                    panic!("not TCP");
                };
                read.push((tcp.source_port(), tcp.syn(), tcp.payload().to_vec()));
            }
            std::fs::remove_dir_all(&dir).unwrap();
            assert_eq!(
                read,
                [(5000, true, vec![]), (40000, false, b"hello".to_vec())]
            );
        }
    }

    #[test]
    fn reads_freebsd_records() {
        two_records(&FREEBSD, &FREEBSD_LP64, FREEBSD_AF_INET6);
    }

    #[test]
    fn reads_xnu_records() {
        two_records(&XNU, &XNU_LP64, XNU_AF_INET6);
    }

    #[test]
    fn a_cut_buffer_yields_the_whole_records_before_the_cut() {
        let ip = ip_packet(1, 2, b"x");
        let mut buf = record(&XNU, 1, 0, AF_INET, &ip);
        let whole = buf.len();
        buf.extend(record(&XNU, 2, 0, AF_INET, &ip));
        assert_eq!(records(&buf[..whole + 30], &XNU_LP64).len(), 1);
        assert_eq!(records(&buf[..10], &XNU_LP64).len(), 0);
    }
}
