//! Network devices inside the case's namespaces, set up with ioctls and netlink requests
//! rather than the `ip` binary, so that the same code works as PID 1 of a bare VM.
//!
//! A case that needs a real link (one whose packets can be dropped, unlike loopback's) makes a
//! second namespace and a veth pair between the two: [`enter_new_netns`], [`create_veth`],
//! [`set_up`], [`set_addr`]. Linux only; elsewhere every call fails with ENOSYS and the cases
//! that use them are skipped before they run.

use nix::errno::Errno;
use std::net::IpAddr;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

/// Bring the device `name` up or down (SIOCSIFFLAGS, IFF_UP) in the current namespace.
pub fn set_up(name: &str, up: bool) -> nix::Result<()> {
    imp::set_up(name, up)
}

/// How long [`set_addr`] waits for an IPv6 address to become local. It usually takes 1 to
/// 12 ms here, but addrconf's work (`addrconf_dad_work()`) takes `rtnl_lock()`, which every
/// namespace's creation and teardown take too: with the suite's cases running in parallel on
/// a loaded machine (a build beside it), it once came later than 2 s.
pub const ADDRESS_USABLE_WITHIN: Duration = Duration::from_secs(5);

/// Give the device `name`, which must be up, the address `addr`/`prefix`, usable when this
/// returns:
/// - IPv4: SIOCSIFADDR and SIOCSIFNETMASK; the kernel adds the local and the prefix's routes
///   at once (`fib_add_ifaddr()` from the inetaddr notifier);
/// - IPv6: RTM_NEWADDR with IFA_F_NODAD, so that the address is never tentative (a tentative
///   address cannot be bound, EADDRNOTAVAIL, and duplicate address detection would keep it so
///   for a second or more; `ipv6_add_addr()` sets no IFA_F_TENTATIVE with NODAD). Its prefix
///   route comes at once, but its local route (what has segments to it delivered rather than
///   forwarded) only when addrconf's work runs, NODAD or not (`addrconf_dad_work()` ->
///   `addrconf_dad_begin()` -> `addrconf_dad_completed()` -> `ip6_ins_rt()`), and not at all
///   on a device that is down: so the call asks the kernel how it routes to the address
///   (RTM_GETROUTE) until it says RTN_LOCAL, for at most [`ADDRESS_USABLE_WITHIN`].
pub fn set_addr(name: &str, addr: IpAddr, prefix: u8) -> nix::Result<()> {
    match addr {
        IpAddr::V4(addr) => imp::set_ipv4(name, addr, prefix),
        IpAddr::V6(addr) => imp::set_ipv6(name, addr, prefix),
    }
}

/// Remove the address `addr`/`prefix` of the device `name`, and with it the prefix's route;
/// the device stays up, so frames still arrive and are dropped unrouted. IPv4: SIOCSIFADDR
/// with 0.0.0.0; IPv6: RTM_DELADDR.
pub fn clear_addr(name: &str, addr: IpAddr, prefix: u8) -> nix::Result<()> {
    match addr {
        IpAddr::V4(_) => imp::clear_ipv4(name),
        IpAddr::V6(addr) => imp::clear_ipv6(name, addr, prefix),
    }
}

/// Move this (single-threaded) process into a new network namespace, returning a handle on the
/// one it leaves. Needs CAP_SYS_ADMIN over the current user namespace (root, or the root of
/// the user namespace the runner made).
pub fn enter_new_netns() -> nix::Result<OwnedFd> {
    imp::enter_new_netns()
}

/// Create a veth pair: `name` in the current namespace, `peer` in the namespace `peer_netns`
/// (RTM_NEWLINK, kind "veth", VETH_INFO_PEER with IFLA_NET_NS_FD). Both start down.
pub fn create_veth(name: &str, peer: &str, peer_netns: BorrowedFd) -> nix::Result<()> {
    imp::create_veth(name, peer, peer_netns)
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::os::fd::AsRawFd;
    use std::time::Instant;

    /// A socket for the interface ioctls, closed when dropped.
    fn ioctl_socket() -> nix::Result<OwnedFd> {
        use std::os::fd::FromRawFd;
        // SAFETY: socket() returns a new descriptor or -1; we own it from here.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        Errno::result(fd).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn ifreq(name: &str) -> libc::ifreq {
        // SAFETY: ifreq is plain old data; all zeroes is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        let max = ifr.ifr_name.len() - 1;
        for (dst, src) in ifr.ifr_name.iter_mut().zip(name.bytes().take(max)) {
            *dst = src as libc::c_char;
        }
        ifr
    }

    pub fn set_up(name: &str, up: bool) -> nix::Result<()> {
        let sock = ioctl_socket()?;
        let mut ifr = ifreq(name);
        // SAFETY: interface ioctls on a socket we own, with an ifreq we initialised; the flags
        // member is the one SIOCGIFFLAGS filled.
        unsafe {
            Errno::result(libc::ioctl(
                sock.as_raw_fd(),
                libc::SIOCGIFFLAGS as _,
                &mut ifr,
            ))?;
            let flags = &mut ifr.ifr_ifru.ifru_flags;
            if up {
                *flags |= libc::IFF_UP as libc::c_short;
            } else {
                *flags &= !(libc::IFF_UP as libc::c_short);
            }
            Errno::result(libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &ifr)).map(|_| ())
        }
    }

    pub fn set_ipv4(name: &str, addr: Ipv4Addr, prefix: u8) -> nix::Result<()> {
        let sock = ioctl_socket()?;
        let mask = Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0));
        for (request, value) in [(libc::SIOCSIFADDR, addr), (libc::SIOCSIFNETMASK, mask)] {
            address_ioctl(&sock, name, request, value)?;
        }
        Ok(())
    }

    pub fn clear_ipv4(name: &str) -> nix::Result<()> {
        address_ioctl(
            &ioctl_socket()?,
            name,
            libc::SIOCSIFADDR,
            Ipv4Addr::UNSPECIFIED,
        )
    }

    /// One address ioctl (SIOCSIFADDR or SIOCSIFNETMASK) for the device `name`.
    fn address_ioctl(
        sock: &OwnedFd,
        name: &str,
        request: libc::c_ulong,
        value: Ipv4Addr,
    ) -> nix::Result<()> {
        let mut ifr = ifreq(name);
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(value).to_be(),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: sockaddr_in fits in the union's sockaddr (both 16 bytes); the ioctl reads the
        // ifreq we initialised.
        unsafe {
            std::ptr::write(
                (&mut ifr.ifr_ifru.ifru_addr as *mut libc::sockaddr).cast(),
                sin,
            );
            Errno::result(libc::ioctl(sock.as_raw_fd(), request as _, &ifr)).map(|_| ())
        }
    }

    pub fn enter_new_netns() -> nix::Result<OwnedFd> {
        let old = nix::fcntl::open(
            "/proc/self/ns/net",
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        // SAFETY: open returned a descriptor we now own.
        let old = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(old) };
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
        set_up("lo", true)?;
        Ok(old)
    }

    /// From `include/uapi/linux/veth.h`; libc does not carry it.
    const VETH_INFO_PEER: u16 = 1;

    /// One netlink attribute: header, payload, padding to 4 bytes.
    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let len = 4 + payload.len();
        let mut out = Vec::with_capacity((len + 3) & !3);
        out.extend_from_slice(&(len as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(payload);
        out.resize((len + 3) & !3, 0);
        out
    }

    /// A C string attribute (interface names are NUL-terminated).
    fn attr_str(kind: u16, s: &str) -> Vec<u8> {
        let mut bytes = s.as_bytes().to_vec();
        bytes.push(0);
        attr(kind, &bytes)
    }

    /// `struct ifinfomsg` for AF_UNSPEC with no index, flags or change mask.
    const EMPTY_IFINFOMSG: [u8; 16] = [0; 16];

    pub fn create_veth(name: &str, peer: &str, peer_netns: BorrowedFd) -> nix::Result<()> {
        let mut peer_info = EMPTY_IFINFOMSG.to_vec();
        peer_info.extend(attr_str(libc::IFLA_IFNAME, peer));
        peer_info.extend(attr(
            libc::IFLA_NET_NS_FD,
            &peer_netns.as_raw_fd().to_ne_bytes(),
        ));
        let link_info = [
            attr_str(libc::IFLA_INFO_KIND, "veth"),
            attr(libc::IFLA_INFO_DATA, &attr(VETH_INFO_PEER, &peer_info)),
        ]
        .concat();
        let mut body = EMPTY_IFINFOMSG.to_vec();
        body.extend(attr_str(libc::IFLA_IFNAME, name));
        body.extend(attr(libc::IFLA_LINKINFO, &link_info));

        request(
            libc::RTM_NEWLINK,
            libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL,
            &body,
        )
        .map(drop)
    }

    /// From include/uapi/linux/if_addr.h; libc does not carry them for Linux.
    const IFA_ADDRESS: u16 = 1;
    const IFA_F_NODAD: u8 = 0x02;

    /// `struct ifaddrmsg` (family, prefix length, flags, scope RT_SCOPE_UNIVERSE, interface
    /// index) and the IFA_ADDRESS attribute, for an IPv6 address of the device `name`.
    fn ipv6_addr_message(
        name: &str,
        addr: Ipv6Addr,
        prefix: u8,
        flags: u8,
    ) -> nix::Result<Vec<u8>> {
        let index = nix::net::if_::if_nametoindex(name)?;
        let mut body = vec![libc::AF_INET6 as u8, prefix, flags, 0];
        body.extend_from_slice(&index.to_ne_bytes());
        body.extend(attr(IFA_ADDRESS, &addr.octets()));
        Ok(body)
    }

    pub fn set_ipv6(name: &str, addr: Ipv6Addr, prefix: u8) -> nix::Result<()> {
        let body = ipv6_addr_message(name, addr, prefix, IFA_F_NODAD)?;
        request(
            libc::RTM_NEWADDR,
            libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL,
            &body,
        )?;
        let start = Instant::now();
        // Polling with a deadline: addrconf's work sends a notification, but before it inserts
        // the route (`__ipv6_ifa_notify()`), so the route itself is what is asked about.
        while !routes_locally(addr)? {
            if start.elapsed() >= ADDRESS_USABLE_WITHIN {
                return Err(Errno::ETIMEDOUT);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    pub fn clear_ipv6(name: &str, addr: Ipv6Addr, prefix: u8) -> nix::Result<()> {
        let body = ipv6_addr_message(name, addr, prefix, 0)?;
        request(libc::RTM_DELADDR, libc::NLM_F_ACK, &body).map(drop)
    }

    /// Whether the kernel delivers segments to `addr` locally: RTM_GETROUTE for it answers
    /// an RTM_NEWROUTE whose `struct rtmsg` (family, dst_len, src_len, tos, table, protocol,
    /// scope, type, flags) has type RTN_LOCAL.
    fn routes_locally(addr: Ipv6Addr) -> nix::Result<bool> {
        const RTM_TYPE_AT: usize = 16 + 7;
        let mut body = vec![libc::AF_INET6 as u8, 128, 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(&0u32.to_ne_bytes());
        body.extend(attr(libc::RTA_DST, &addr.octets()));
        let answer = request(libc::RTM_GETROUTE, 0, &body)?;
        Ok(answer.get(RTM_TYPE_AT) == Some(&libc::RTN_LOCAL))
    }

    /// Send one NETLINK_ROUTE request (`flags` besides NLM_F_REQUEST) and read its answer: an
    /// NLMSG_ERROR carrying an error is that errno, anything else (an ACK, the message asked
    /// for) is returned whole.
    fn request(kind: u16, flags: libc::c_int, body: &[u8]) -> nix::Result<Vec<u8>> {
        let flags = libc::NLM_F_REQUEST | flags;
        let mut message = Vec::with_capacity(16 + body.len());
        message.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        message.extend_from_slice(&kind.to_ne_bytes());
        message.extend_from_slice(&(flags as u16).to_ne_bytes());
        message.extend_from_slice(&1u32.to_ne_bytes()); // sequence number
        message.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
        message.extend(body);

        let io = |e: std::io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(io)?;
        socket.bind_auto().map_err(io)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(io)?;
        socket.send(&message, 0).map_err(io)?;
        // The answer starts with an nlmsghdr; an NLMSG_ERROR's error (0 for an ACK) follows it.
        let mut answer = vec![0u8; 4096];
        let n = socket.recv(&mut &mut answer[..], 0).map_err(io)?;
        answer.truncate(n);
        let kind = answer.get(4..6).map(|b| u16::from_ne_bytes([b[0], b[1]]));
        let error = answer
            .get(16..20)
            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
        match (kind, error) {
            (Some(k), Some(e)) if k == libc::NLMSG_ERROR as u16 && e != 0 => {
                Err(Errno::from_raw(-e))
            }
            (Some(_), _) if n >= 16 => Ok(answer),
            _ => Err(Errno::EPROTO),
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    pub fn set_up(_name: &str, _up: bool) -> nix::Result<()> {
        Err(Errno::ENOSYS)
    }

    pub fn set_ipv4(_name: &str, _addr: Ipv4Addr, _prefix: u8) -> nix::Result<()> {
        Err(Errno::ENOSYS)
    }

    pub fn set_ipv6(_name: &str, _addr: Ipv6Addr, _prefix: u8) -> nix::Result<()> {
        Err(Errno::ENOSYS)
    }

    pub fn clear_ipv4(_name: &str) -> nix::Result<()> {
        Err(Errno::ENOSYS)
    }

    pub fn clear_ipv6(_name: &str, _addr: Ipv6Addr, _prefix: u8) -> nix::Result<()> {
        Err(Errno::ENOSYS)
    }

    pub fn enter_new_netns() -> nix::Result<OwnedFd> {
        Err(Errno::ENOSYS)
    }

    pub fn create_veth(_name: &str, _peer: &str, _peer_netns: BorrowedFd) -> nix::Result<()> {
        Err(Errno::ENOSYS)
    }
}
