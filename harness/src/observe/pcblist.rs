//! The BSDs' socket table: the PCB list sysctl that `netstat -an` reads, parsed with the
//! structures of the named releases. It lists every TCP socket of the host, including those no
//! process holds (TIME_WAIT, orphaned FIN_WAIT_2), with their state and timers.
//!
//! The parsers are plain byte-parsing functions that compile on every OS and are tested on
//! Linux over fixtures laid out by the structure definitions; only [`read_sysctl`] is per OS.
//! Each offset below was computed by hand from the definition it cites and checked against
//! `offsetof` in a C program compiled with those definitions (LP64: amd64 and arm64 lay these
//! structures out alike). A record of another size than the release's is refused with a
//! message, not misread: a future release that changes the structures shows up as an error.

use super::sock_diag::{TcpSock, Timer};
use super::tcp_state::bsd_state_name;
use crate::kind::Family;
use std::time::Duration;

/// `INP_IPV4` and `INP_IPV6` in `inp_vflag` (FreeBSD sys/netinet/in_pcb.h, XNU
/// bsd/netinet/in_pcb.h): the families the PCB carries. An AF_INET socket's PCB is INP_IPV4;
/// an AF_INET6 one's INP_IPV6, plus INP_IPV4 when bound to the unspecified address with
/// IPV6_V6ONLY off, and INP_IPV4 alone once bound or connected to a v4-mapped address or
/// accepted from an IPv4 peer on such a listener (both kernels' tcp6_usr_bind() and
/// tcp6_usr_connect(); FreeBSD syncache_socket(), XNU tcp_input()).
pub const INP_IPV4: u8 = 0x1;
pub const INP_IPV6: u8 = 0x2;

/// The `inp_vflag` bits of `families`: the table keeps a PCB that carries any of them, as
/// Linux's sock_diag keeps a socket of the family asked for.
fn vflag_mask(families: &[Family]) -> u8 {
    families
        .iter()
        .map(|f| match f {
            Family::Inet => INP_IPV4,
            Family::Inet6 => INP_IPV6,
        })
        .fold(0, |mask, bit| mask | bit)
}

fn u16_be(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buf[at], buf[at + 1]])
}

fn u32_ne(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

fn i32_ne(buf: &[u8], at: usize) -> i32 {
    i32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_ne(buf: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

/// The timers both BSDs export, in the order one is chosen to report: the 2MSL timer (TIME_WAIT,
/// FIN_WAIT_2) first, as Linux's sock_diag reports the time-wait timer of such sockets, then
/// retransmit, persist, keepalive. Values are the kernel's, 0 when the timer is off.
struct Timers {
    two_msl: i32,
    rexmt: i32,
    persist: i32,
    keep: i32,
}

impl Timers {
    /// The first running timer; `left` is the value in ms where it counts down, else unknown.
    fn running(&self, counts_down_ms: bool) -> Option<Timer> {
        [
            ("2msl", self.two_msl),
            ("rexmt", self.rexmt),
            ("persist", self.persist),
            ("keep", self.keep),
        ]
        .into_iter()
        .find(|(_, v)| *v != 0)
        .map(|(kind, v)| Timer {
            kind,
            // A timer just past its expiry reads negative until it has run.
            left: counts_down_ms.then(|| Duration::from_millis(v.max(0) as u64)),
        })
    }
}

/// FreeBSD 14: `net.inet.tcp.pcblist`, written by `tcp_pcblist()` (sys/netinet/tcp_subr.c):
/// a `struct xinpgen`, one `struct xtcpcb` per PCB (`syncache_pcblist()`'s SYN_RECEIVED
/// entries first, then every inpcb, each filled by `tcp_inptoxtp()`), and a closing
/// `struct xinpgen`. Every record starts with its length as a `ksize_t` (uint64_t).
///
/// Read from stable/14 at ilnp/ilnp-freebsd14 2f2a4162bbb9e932d8e9cd9cb899fbf84310fb6b, the
/// tree the FreeBSD 14.0-STABLE kernel in ../shared/freebsd was built from; the fork's ILNP
/// changes do not touch these structures (they add `inp_np`/`ilnp6_gw` to the kernel-only
/// `struct inpcb`, under `#ifdef ILNP6`).
pub mod freebsd {
    use super::*;

    pub const SYSCTL: &str = "net.inet.tcp.pcblist";

    /// `struct xinpgen` (sys/netinet/in_pcb.h): xig_len (ksize_t) at 0, xig_count at 8,
    /// _xig_spare32 at 12, xig_gen at 16, xig_sogen at 24, _xig_spare64[4] at 32;
    /// `__aligned(8)`: 64 bytes.
    pub const XINPGEN_SIZE: usize = 64;

    /// `struct xtcpcb` (sys/netinet/tcp_var.h), 744 bytes, `__aligned(8)`:
    /// - xt_len (ksize_t) at 0;
    /// - `struct xinpcb xt_inp` at 8 (400 bytes);
    /// - xt_stack[32] at 408, xt_logid[64] at 440, xt_cc[16] at 504, spare64[6] at 520;
    /// - t_state (int32_t) at 568, t_flags 572, t_sndzerowin 576, t_sndrexmitpack 580,
    ///   t_rcvoopack 584, t_rcvtime 588;
    /// - tt_rexmt 592, tt_persist 596, tt_keep 600, tt_2msl 604, tt_delack 608 (int32_t, in
    ///   ms left: `tcp_inptoxtp()`'s COPYTIMER is (t_timers[which] - now) / SBT_1MS, 0 when
    ///   the timer is off);
    /// - then t_logstate … spare32[22], up to 744.
    pub const XTCPCB_SIZE: usize = 744;
    pub const XT_INP: usize = 8;
    pub const T_STATE: usize = 568;
    pub const TT_REXMT: usize = 592;
    pub const TT_PERSIST: usize = 596;
    pub const TT_KEEP: usize = 600;
    pub const TT_2MSL: usize = 604;

    /// `struct xinpcb` (sys/netinet/in_pcb.h), 400 bytes, `__aligned(8)`: xi_len (ksize_t) at
    /// 0; `struct xsocket xi_socket` at 8 (240 bytes, sys/sys/socketvar.h); `struct
    /// in_conninfo inp_inc` at 248 (44 bytes: inc_flags, inc_len, inc_fibnum, then `struct
    /// in_endpoints inc_ie` at +4 with ie_fport at +0 and ie_lport at +2, in network order,
    /// then the foreign and local `union in_dependaddr`, 16 bytes each); inp_gencnt at 296, …,
    /// inp_vflag (uint8_t) at 392.
    pub const XINPCB_SIZE: usize = 400;
    pub const XI_FPORT: usize = 252;
    pub const XI_LPORT: usize = 254;
    pub const XI_VFLAG: usize = 392;

    /// The TCP sockets of `families` in a `net.inet.tcp.pcblist` dump.
    pub fn parse(buf: &[u8], families: &[Family]) -> Result<Vec<TcpSock>, String> {
        let wanted = vflag_mask(families);
        if buf.len() < XINPGEN_SIZE {
            return Err(format!(
                "{SYSCTL}: {} bytes, shorter than its struct xinpgen",
                buf.len()
            ));
        }
        let head = u64_ne(buf, 0);
        if head != XINPGEN_SIZE as u64 {
            return Err(format!(
                "{SYSCTL}: xig_len {head}, but FreeBSD 14's struct xinpgen is {XINPGEN_SIZE} bytes"
            ));
        }
        let mut sockets = vec![];
        let mut at = XINPGEN_SIZE;
        while at + 8 <= buf.len() {
            let len = u64_ne(buf, at) as usize;
            // The closing xinpgen (or nothing more): netstat stops the same way.
            if len <= XINPGEN_SIZE {
                break;
            }
            if len != XTCPCB_SIZE {
                return Err(format!(
                    "{SYSCTL}: a record of {len} bytes, but FreeBSD 14's struct xtcpcb is {XTCPCB_SIZE}"
                ));
            }
            let Some(rec) = buf.get(at..at + len) else {
                return Err(format!("{SYSCTL}: the record at {at} is cut short"));
            };
            if rec[XT_INP + XI_VFLAG] & wanted != 0 {
                let timers = Timers {
                    two_msl: i32_ne(rec, TT_2MSL),
                    rexmt: i32_ne(rec, TT_REXMT),
                    persist: i32_ne(rec, TT_PERSIST),
                    keep: i32_ne(rec, TT_KEEP),
                };
                sockets.push(TcpSock {
                    state: state_name(i32_ne(rec, T_STATE)),
                    local_port: u16_be(rec, XT_INP + XI_LPORT),
                    remote_port: u16_be(rec, XT_INP + XI_FPORT),
                    timer: timers.running(true),
                });
            }
            at += len;
        }
        Ok(sockets)
    }
}

/// XNU: `net.inet.tcp.pcblist_n`, written by `get_pcblist_n()` (bsd/netinet/in_pcblist.c,
/// xnu-11417.121.6): a `struct xinpgen`, then per PCB a sequence of records, each 8-byte
/// aligned (`ROUNDUP64`) and each starting with a u_int32_t length and a u_int32_t kind:
/// `xinpcb_n` (XSO_INPCB), `xsocket_n`, two `xsockbuf_n`, `xsockstat_n`, and for TCP
/// `xtcpcb_n` (XSO_TCPCB); then a closing `struct xinpgen`. The structures are declared under
/// `#pragma pack(4)`.
pub mod xnu {
    use super::*;

    pub const SYSCTL: &str = "net.inet.tcp.pcblist_n";

    /// `struct xinpgen` (bsd/netinet/in_pcb.h, packed 4): xig_len (u_int32_t) at 0, xig_count
    /// at 4, xig_gen (u_quad_t) at 8, xig_sogen at 16: 24 bytes.
    pub const XINPGEN_SIZE: usize = 24;

    /// XSO_* kinds (bsd/sys/socketvar.h).
    pub const XSO_SOCKET: u32 = 0x001;
    pub const XSO_RCVBUF: u32 = 0x002;
    pub const XSO_SNDBUF: u32 = 0x004;
    pub const XSO_STATS: u32 = 0x008;
    pub const XSO_INPCB: u32 = 0x010;
    pub const XSO_TCPCB: u32 = 0x020;

    /// `struct xinpcb_n` (bsd/netinet/in_pcb.h, packed 4), 104 bytes: xi_len 0, xi_kind 4,
    /// xi_inpp (u_int64_t) 8, inp_fport (u_short, network order) 16, inp_lport 18, inp_ppcb 20,
    /// inp_gencnt 28, inp_flags 36, inp_flow 40, inp_vflag (u_char) 44, inp_ip_ttl 45,
    /// inp_ip_p 46, inp_dependfaddr 48, inp_dependladdr 64, inp_depend4 80, inp_depend6 84,
    /// inp_flowhash 96, inp_flags2 100.
    pub const XINPCB_N_SIZE: usize = 104;
    pub const XI_FPORT: usize = 16;
    pub const XI_LPORT: usize = 18;
    pub const XI_VFLAG: usize = 44;

    /// `struct xsocket_n` (bsd/sys/socketvar.h, packed 4): 104 bytes. `struct xsockbuf_n`: 32.
    /// `struct xsockstat_n`: 8 + SO_TC_STATS_MAX (4) x `struct data_stats` (32) = 136.
    /// Only walked over, by their lengths.
    pub const XSOCKET_N_SIZE: usize = 104;
    pub const XSOCKBUF_N_SIZE: usize = 32;
    pub const XSOCKSTAT_N_SIZE: usize = 136;

    /// `struct xtcpcb_n` (bsd/netinet/tcp_var.h, packed 4), 204 bytes: xt_len 0, xt_kind 4,
    /// t_segq (u_int64_t) 8, t_dupacks 16, t_timer[TCPT_NTIMERS_EXT = 4] (int) at 20, indexed
    /// by TCPT_REXMT_EXT 0, TCPT_PERSIST_EXT 1, TCPT_KEEP_EXT 2, TCPT_2MSL_EXT 3
    /// (bsd/netinet/tcp_timer.h), t_state (int) at 36, t_flags 40, …, snd_ssthresh_prev at
    /// 200.
    pub const XTCPCB_N_SIZE: usize = 204;
    pub const T_TIMER: usize = 20;
    pub const T_STATE: usize = 36;

    /// ROUNDUP64 of in_pcblist.c: records are padded to 8 bytes.
    pub fn roundup64(n: usize) -> usize {
        (n + 7) & !7
    }

    /// The PCB being read: its xinpcb_n's fields, then its xtcpcb_n's.
    struct Pending {
        vflag: u8,
        local_port: u16,
        remote_port: u16,
        tcp: Option<(i32, Timers)>,
    }

    impl Pending {
        fn into_sock(self, wanted: u8) -> Option<TcpSock> {
            let (state, timers) = self.tcp?;
            (self.vflag & wanted != 0).then(|| TcpSock {
                state: state_name(state),
                local_port: self.local_port,
                remote_port: self.remote_port,
                // The values count from a clock that is not exported: see sock_diag's module
                // documentation. Which timer runs is still known.
                timer: timers.running(false),
            })
        }
    }

    /// The TCP sockets of `families` in a `net.inet.tcp.pcblist_n` dump.
    pub fn parse(buf: &[u8], families: &[Family]) -> Result<Vec<TcpSock>, String> {
        let wanted = vflag_mask(families);
        let finish = |p: Pending| p.into_sock(wanted);
        if buf.len() < XINPGEN_SIZE {
            return Err(format!(
                "{SYSCTL}: {} bytes, shorter than its struct xinpgen",
                buf.len()
            ));
        }
        let head = u32_ne(buf, 0) as usize;
        if head != XINPGEN_SIZE {
            return Err(format!(
                "{SYSCTL}: xig_len {head}, but XNU's struct xinpgen is {XINPGEN_SIZE} bytes"
            ));
        }
        let mut sockets = vec![];
        let mut pending: Option<Pending> = None;
        let mut at = roundup64(head);
        while at + 8 <= buf.len() {
            let (len, kind) = (u32_ne(buf, at) as usize, u32_ne(buf, at + 4));
            // The closing xinpgen: netstat stops at a record no longer than one.
            if len <= XINPGEN_SIZE {
                break;
            }
            let Some(rec) = buf.get(at..at + len) else {
                return Err(format!("{SYSCTL}: the record at {at} is cut short"));
            };
            match kind {
                XSO_INPCB => {
                    if len != XINPCB_N_SIZE {
                        return Err(format!(
                            "{SYSCTL}: an xinpcb_n of {len} bytes, but XNU's is {XINPCB_N_SIZE}"
                        ));
                    }
                    sockets.extend(pending.take().and_then(finish));
                    pending = Some(Pending {
                        vflag: rec[XI_VFLAG],
                        local_port: u16_be(rec, XI_LPORT),
                        remote_port: u16_be(rec, XI_FPORT),
                        tcp: None,
                    });
                }
                XSO_TCPCB => {
                    if len != XTCPCB_N_SIZE {
                        return Err(format!(
                            "{SYSCTL}: an xtcpcb_n of {len} bytes, but XNU's is {XTCPCB_N_SIZE}"
                        ));
                    }
                    let timer = |i: usize| i32_ne(rec, T_TIMER + 4 * i);
                    if let Some(p) = pending.as_mut() {
                        p.tcp = Some((
                            i32_ne(rec, T_STATE),
                            Timers {
                                rexmt: timer(0),
                                persist: timer(1),
                                keep: timer(2),
                                two_msl: timer(3),
                            },
                        ));
                    }
                }
                // The socket, its buffers and statistics (an absent socket buffer's record has
                // kind 0): nothing the table needs.
                _ => {}
            }
            at += roundup64(len);
        }
        sockets.extend(pending.take().and_then(finish));
        Ok(sockets)
    }
}

/// A `t_state` as both BSDs number it, named as Linux does.
fn state_name(state: i32) -> &'static str {
    u8::try_from(state).map_or("UNKNOWN", bsd_state_name)
}

/// The bytes of an opaque sysctl (the PCB lists), asking for its size first and retrying if it
/// grew in between.
#[cfg(any(target_os = "freebsd", target_os = "macos"))]
pub fn read_sysctl(name: &str) -> std::io::Result<Vec<u8>> {
    let cname = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
    for _ in 0..8 {
        let mut len: libc::size_t = 0;
        // SAFETY: a size query: no buffer is written.
        let rc = unsafe {
            libc::sysctlbyname(
                cname.as_ptr(),
                std::ptr::null_mut(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // Room for sockets opened between the two calls.
        len += len / 8 + 4096;
        let mut buf = vec![0u8; len];
        // SAFETY: the kernel writes at most `len` bytes into `buf`, which has that many.
        let rc = unsafe {
            libc::sysctlbyname(
                cname.as_ptr(),
                buf.as_mut_ptr().cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc == 0 {
            buf.truncate(len);
            return Ok(buf);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENOMEM) {
            return Err(e);
        }
    }
    Err(std::io::Error::other(format!(
        "{name} kept growing past the buffer"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::tcp_state::tcps;

    fn put_u16_be(buf: &mut [u8], at: usize, v: u16) {
        buf[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }
    fn put_u32(buf: &mut [u8], at: usize, v: u32) {
        buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }
    fn put_i32(buf: &mut [u8], at: usize, v: i32) {
        buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }
    fn put_u64(buf: &mut [u8], at: usize, v: u64) {
        buf[at..at + 8].copy_from_slice(&v.to_ne_bytes());
    }

    /// The foreign and local addresses of a PCB, two 16-byte `union in_dependaddr`s (FreeBSD)
    /// or `inp_dependfaddr`/`inp_dependladdr` unions (XNU) from `at`, both loopback: ::1 in
    /// the whole `in6_addr` for an INP_IPV6 PCB, else 127.0.0.1 in the last 4 bytes of
    /// `struct in_addr_4in6` (after `ia46_pad32[3]`). The parsers match on ports only, so the
    /// addresses are there to be read past.
    fn put_loopback_addrs(buf: &mut [u8], at: usize, vflag: u8) {
        for addr in [at, at + 16] {
            if vflag & INP_IPV6 != 0 {
                buf[addr..addr + 16].copy_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
            } else {
                buf[addr + 12..addr + 16].copy_from_slice(&[127, 0, 0, 1]);
            }
        }
    }

    /// The (local, remote) ports of each socket listed, in order.
    fn ports(socks: &[TcpSock]) -> Vec<(u16, u16)> {
        socks
            .iter()
            .map(|s| (s.local_port, s.remote_port))
            .collect()
    }

    /// The families one at a time and together.
    const INET: &[Family] = &[Family::Inet];
    const INET6: &[Family] = &[Family::Inet6];
    const BOTH: &[Family] = &[Family::Inet, Family::Inet6];

    mod freebsd_layout {
        use super::*;
        use crate::observe::pcblist::freebsd::*;

        fn xinpgen(count: u32) -> Vec<u8> {
            let mut g = vec![0u8; XINPGEN_SIZE];
            put_u64(&mut g, 0, XINPGEN_SIZE as u64);
            put_u32(&mut g, 8, count);
            g
        }

        /// An xtcpcb as `tcp_inptoxtp()` fills it, at the offsets `offsetof` gives for the
        /// definitions (written out here, not taken from the parser's constants, so that a
        /// wrong constant fails). Its xinpcb's xi_len and the xsocket's xso_len are set too,
        /// so that a misplaced read finds plausible numbers rather than zeros.
        fn xtcpcb(vflag: u8, lport: u16, fport: u16, state: u8, timers: [i32; 4]) -> Vec<u8> {
            let mut r = vec![0u8; 744];
            put_u64(&mut r, 0, 744); // xt_len
            put_u64(&mut r, 8, 400); // xt_inp.xi_len
            put_u64(&mut r, 16, 240); // xt_inp.xi_socket.xso_len
            put_u16_be(&mut r, 8 + 252, fport); // xt_inp.inp_inc.inc_ie.ie_fport
            put_u16_be(&mut r, 8 + 254, lport); // ie_lport
            put_loopback_addrs(&mut r, 8 + 256, vflag); // ie_dependfaddr, ie_dependladdr
            r[8 + 392] = vflag; // xt_inp.inp_vflag
            r[408..415].copy_from_slice(b"freebsd"); // xt_stack
            put_i32(&mut r, 568, state.into()); // t_state
            let [two_msl, rexmt, persist, keep] = timers;
            put_i32(&mut r, 592, rexmt); // tt_rexmt
            put_i32(&mut r, 596, persist); // tt_persist
            put_i32(&mut r, 600, keep); // tt_keep
            put_i32(&mut r, 604, two_msl); // tt_2msl
            put_i32(&mut r, 608, 40); // tt_delack, never reported
            r
        }

        /// The offsets are those the C definitions give: the region between two consecutive
        /// fields is the first's size (xinpcb inside xtcpcb ends where xt_stack starts).
        #[test]
        fn offsets_follow_the_structure_definitions() {
            assert_eq!(XT_INP + XINPCB_SIZE, 408, "xt_stack follows xt_inp");
            assert_eq!(
                408 + 32 + 64 + 16 + 6 * 8,
                T_STATE,
                "t_state follows spare64[6]"
            );
            assert_eq!(T_STATE + 6 * 4, TT_REXMT);
            assert_eq!(TT_REXMT + 4 * 3, TT_2MSL);
            // tt_2msl, tt_delack, t_logstate, nine uint32_t, xt_encaps_port, spare16, spare32[22].
            assert_eq!(TT_2MSL + 4 * 3 + 4 * 9 + 2 + 2 + 22 * 4, XTCPCB_SIZE);
            assert_eq!(8 + 240 + 4, XI_FPORT, "inc_ie follows 4 bytes of inp_inc");
            assert_eq!(
                296 + 8 + 8 + 32 + 4 * 7 + 4 * 4 + 2 + 1 + 1,
                XI_VFLAG,
                "inp_vflag after inp_gencnt … pad8"
            );
        }

        #[test]
        fn lists_the_sockets_of_the_families_asked_for_with_state_ports_and_the_2msl_timer() {
            let mut dump = xinpgen(5);
            dump.extend(xtcpcb(
                INP_IPV4,
                40000,
                5000,
                tcps::TIME_WAIT,
                [59_123, 0, 0, 0],
            ));
            dump.extend(xtcpcb(INP_IPV4, 5000, 0, tcps::LISTEN, [0; 4]));
            dump.extend(xtcpcb(
                INP_IPV6,
                6000,
                6001,
                tcps::ESTABLISHED,
                [0, 0, 0, 7_200_000],
            ));
            // A dual-stack listener ([::], IPV6_V6ONLY off) carries both families.
            dump.extend(xtcpcb(INP_IPV4 | INP_IPV6, 7000, 0, tcps::LISTEN, [0; 4]));
            dump.extend(xtcpcb(
                INP_IPV4,
                5000,
                40001,
                tcps::ESTABLISHED,
                [0, 0, 0, 7_199_000],
            ));
            dump.extend(xinpgen(5));
            let socks = parse(&dump, INET).unwrap();
            assert_eq!(
                socks[..2],
                [
                    TcpSock {
                        state: "TIME_WAIT",
                        local_port: 40000,
                        remote_port: 5000,
                        timer: Some(Timer {
                            kind: "2msl",
                            left: Some(Duration::from_millis(59_123))
                        }),
                    },
                    TcpSock {
                        state: "LISTEN",
                        local_port: 5000,
                        remote_port: 0,
                        timer: None,
                    },
                ]
            );
            assert_eq!(
                socks[3],
                TcpSock {
                    state: "ESTABLISHED",
                    local_port: 5000,
                    remote_port: 40001,
                    timer: Some(Timer {
                        kind: "keep",
                        left: Some(Duration::from_millis(7_199_000))
                    }),
                }
            );
            assert_eq!(
                ports(&socks),
                [(40000, 5000), (5000, 0), (7000, 0), (5000, 40001)]
            );
            let v6 = parse(&dump, INET6).unwrap();
            assert_eq!(ports(&v6), [(6000, 6001), (7000, 0)]);
            assert_eq!(
                v6[0].timer,
                Some(Timer {
                    kind: "keep",
                    left: Some(Duration::from_millis(7_200_000))
                })
            );
            assert_eq!(parse(&dump, BOTH).unwrap().len(), 5);
            assert_eq!(parse(&dump, &[]).unwrap(), []);
        }

        #[test]
        fn a_fin_wait_2_orphan_reports_its_2msl_timer_before_keepalive() {
            let mut dump = xinpgen(1);
            dump.extend(xtcpcb(
                INP_IPV4,
                40000,
                5000,
                tcps::FIN_WAIT_2,
                [1_800, 0, 0, 5_000],
            ));
            dump.extend(xinpgen(1));
            let sock = parse(&dump, INET).unwrap()[0];
            assert_eq!(sock.state, "FIN_WAIT2");
            assert_eq!(sock.timer.map(|t| t.kind), Some("2msl"));
        }

        #[test]
        fn refuses_records_of_another_release() {
            let mut dump = xinpgen(1);
            let mut other = xtcpcb(INP_IPV4, 1, 2, tcps::ESTABLISHED, [0; 4]);
            put_u64(&mut other, 0, 752);
            other.extend([0u8; 8]);
            dump.extend(other);
            assert!(parse(&dump, INET).unwrap_err().contains("752 bytes"));
            assert!(parse(&dump[..10], INET).is_err());
            let mut cut = xinpgen(1);
            cut.extend(&xtcpcb(INP_IPV4, 1, 2, 4, [0; 4])[..100]);
            assert!(parse(&cut, INET).unwrap_err().contains("cut short"));
        }
    }

    mod xnu_layout {
        use super::*;
        use crate::observe::pcblist::xnu::*;

        fn xinpgen() -> Vec<u8> {
            let mut g = vec![0u8; XINPGEN_SIZE];
            put_u32(&mut g, 0, XINPGEN_SIZE as u32);
            put_u32(&mut g, 4, 2);
            g
        }

        /// A record of `size` bytes with its length and kind, padded as ROUNDUP64 pads it.
        fn record(size: usize, kind: u32) -> Vec<u8> {
            let mut r = vec![0u8; roundup64(size)];
            put_u32(&mut r, 0, size as u32);
            put_u32(&mut r, 4, kind);
            r
        }

        /// One PCB as `get_pcblist_n()` writes it: xinpcb_n, xsocket_n, the receive and send
        /// xsockbuf_n, xsockstat_n, xtcpcb_n; at the offsets `offsetof` gives for the
        /// definitions, written out here rather than taken from the parser's constants.
        fn pcb(vflag: u8, lport: u16, fport: u16, state: u8, timers: [i32; 4]) -> Vec<u8> {
            let mut inp = record(104, XSO_INPCB);
            put_u16_be(&mut inp, 16, fport); // inp_fport
            put_u16_be(&mut inp, 18, lport); // inp_lport
            inp[44] = vflag; // inp_vflag
            inp[45] = 64; // inp_ip_ttl
            inp[46] = 6; // inp_ip_p
            put_loopback_addrs(&mut inp, 48, vflag); // inp_dependfaddr, inp_dependladdr
            let mut tcp = record(204, XSO_TCPCB);
            for (i, t) in timers.iter().enumerate() {
                put_i32(&mut tcp, 20 + 4 * i, *t); // t_timer[i]
            }
            put_i32(&mut tcp, 36, state.into()); // t_state
            put_u32(&mut tcp, 40, 0x1e0); // t_flags
            let mut out = inp;
            out.extend(record(104, XSO_SOCKET));
            out.extend(record(32, XSO_RCVBUF));
            out.extend(record(32, XSO_SNDBUF));
            out.extend(record(136, XSO_STATS));
            out.extend(tcp);
            out
        }

        #[test]
        fn offsets_follow_the_structure_definitions() {
            // Packed 4: inp_ppcb (u_int64_t) follows the two u_shorts at 16 without padding.
            assert_eq!(XI_LPORT + 2, 20);
            assert_eq!(20 + 8 + 8 + 4 + 4, XI_VFLAG, "inp_vflag after inp_flow");
            assert_eq!(XI_VFLAG + 4 + 16 + 16 + 4 + 12 + 4 + 4, XINPCB_N_SIZE);
            assert_eq!(8 + 8 + 4, T_TIMER, "t_timer after t_segq and t_dupacks");
            assert_eq!(T_TIMER + 4 * 4, T_STATE);
            // 32 ints from t_state to t_softerror, 6 chars padded to 8, 8 u_int32_t.
            assert_eq!(T_STATE + 4 * 32 + 8 + 4 * 8, XTCPCB_N_SIZE);
            assert_eq!(8 + 4 * 32, XSOCKSTAT_N_SIZE);
            // Every record but xsockstat_n and xtcpcb_n is a multiple of 8 already.
            assert_eq!(roundup64(XTCPCB_N_SIZE), 208);
        }

        #[test]
        fn lists_the_sockets_of_the_families_asked_for_with_state_ports_and_which_timer_runs() {
            let mut dump = xinpgen();
            dump.extend(pcb(
                INP_IPV4,
                40000,
                5000,
                tcps::TIME_WAIT,
                [0, 0, 0, 123_456],
            ));
            dump.extend(pcb(INP_IPV4, 5000, 0, tcps::LISTEN, [0; 4]));
            dump.extend(pcb(
                INP_IPV6,
                6000,
                6001,
                tcps::FIN_WAIT_2,
                [0, 0, 0, 75_000],
            ));
            dump.extend(pcb(INP_IPV4 | INP_IPV6, 7000, 0, tcps::LISTEN, [0; 4]));
            dump.extend(pcb(INP_IPV4, 5000, 40000, tcps::LAST_ACK, [1_200, 0, 0, 0]));
            dump.extend(xinpgen());
            let v6 = parse(&dump, INET6).unwrap();
            assert_eq!(ports(&v6), [(6000, 6001), (7000, 0)]);
            assert_eq!(
                (v6[0].state, v6[0].timer),
                (
                    "FIN_WAIT2",
                    Some(Timer {
                        kind: "2msl",
                        left: None
                    })
                )
            );
            assert_eq!(parse(&dump, BOTH).unwrap().len(), 5);
            let v4 = parse(&dump, INET).unwrap();
            assert_eq!(
                ports(&v4),
                [(40000, 5000), (5000, 0), (7000, 0), (5000, 40000)]
            );
            assert_eq!(
                [v4[0], v4[1], v4[3]],
                [
                    TcpSock {
                        state: "TIME_WAIT",
                        local_port: 40000,
                        remote_port: 5000,
                        timer: Some(Timer {
                            kind: "2msl",
                            left: None
                        }),
                    },
                    TcpSock {
                        state: "LISTEN",
                        local_port: 5000,
                        remote_port: 0,
                        timer: None,
                    },
                    TcpSock {
                        state: "LAST_ACK",
                        local_port: 5000,
                        remote_port: 40000,
                        timer: Some(Timer {
                            kind: "rexmt",
                            left: None
                        }),
                    },
                ]
            );
        }

        #[test]
        fn a_pcb_without_its_tcp_record_is_left_out() {
            // get_pcblist_n() skips a PCB whose inp_ppcb is NULL only after it wrote the
            // records into its buffer, so nothing of it is sent; a dump cut between a PCB's
            // records still parses up to there.
            let mut dump = xinpgen();
            let whole = pcb(INP_IPV4, 1, 2, tcps::ESTABLISHED, [0; 4]);
            dump.extend(&whole[..whole.len() - roundup64(XTCPCB_N_SIZE)]);
            dump.extend(xinpgen());
            assert_eq!(parse(&dump, BOTH).unwrap(), []);
        }

        #[test]
        fn refuses_records_of_another_release() {
            let mut dump = xinpgen();
            dump.extend(record(XINPCB_N_SIZE + 8, XSO_INPCB));
            assert!(parse(&dump, INET).unwrap_err().contains("112 bytes"));
            let mut head = xinpgen();
            put_u32(&mut head, 0, 32);
            assert!(parse(&head, INET).is_err());
        }
    }
}
