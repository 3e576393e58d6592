//! Network devices inside the case's namespaces, set up with ioctls and one netlink request
//! rather than the `ip` binary, so that the same code works as PID 1 of a bare VM.
//!
//! A case that needs a real link (one whose packets can be dropped, unlike loopback's) makes a
//! second namespace and a veth pair between the two: [`enter_new_netns`], [`create_veth`],
//! [`set_ipv4`], [`set_up`]. Linux only; elsewhere every call fails with ENOSYS and the cases
//! that use them are skipped before they run.

use nix::errno::Errno;
use std::net::Ipv4Addr;
use std::os::fd::{BorrowedFd, OwnedFd};

/// Bring the device `name` up or down (SIOCSIFFLAGS, IFF_UP) in the current namespace.
pub fn set_up(name: &str, up: bool) -> nix::Result<()> {
    imp::set_up(name, up)
}

/// Give the device `name` the address `addr`/`prefix` (SIOCSIFADDR, SIOCSIFNETMASK); the kernel
/// adds the prefix's route when the device comes up.
pub fn set_ipv4(name: &str, addr: Ipv4Addr, prefix: u8) -> nix::Result<()> {
    imp::set_ipv4(name, addr, prefix)
}

/// Remove the IPv4 address of the device `name` (SIOCSIFADDR with 0.0.0.0), and with it the
/// prefix's route; the device stays up, so frames still arrive and are dropped unrouted.
pub fn clear_ipv4(name: &str) -> nix::Result<()> {
    imp::clear_ipv4(name)
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
    use std::os::fd::AsRawFd;

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
            set_addr(&sock, name, request, value)?;
        }
        Ok(())
    }

    pub fn clear_ipv4(name: &str) -> nix::Result<()> {
        set_addr(
            &ioctl_socket()?,
            name,
            libc::SIOCSIFADDR,
            Ipv4Addr::UNSPECIFIED,
        )
    }

    /// One address ioctl (SIOCSIFADDR or SIOCSIFNETMASK) for the device `name`.
    fn set_addr(
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

        let flags = libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL;
        let mut message = Vec::with_capacity(16 + body.len());
        message.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        message.extend_from_slice(&libc::RTM_NEWLINK.to_ne_bytes());
        message.extend_from_slice(&(flags as u16).to_ne_bytes());
        message.extend_from_slice(&1u32.to_ne_bytes()); // sequence number
        message.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
        message.extend(body);

        let io = |e: std::io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(io)?;
        socket.bind_auto().map_err(io)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(io)?;
        socket.send(&message, 0).map_err(io)?;
        // The answer is one NLMSG_ERROR: an nlmsghdr, then the error (0 for the ACK).
        let mut answer = vec![0u8; 4096];
        let n = socket.recv(&mut &mut answer[..], 0).map_err(io)?;
        let kind = answer.get(4..6).map(|b| u16::from_ne_bytes([b[0], b[1]]));
        let error = answer
            .get(16..20)
            .filter(|_| n >= 20)
            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
        match (kind, error) {
            (Some(k), Some(0)) if k == libc::NLMSG_ERROR as u16 => Ok(()),
            (Some(k), Some(e)) if k == libc::NLMSG_ERROR as u16 => Err(Errno::from_raw(-e)),
            _ => Err(Errno::EPROTO),
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    pub fn set_up(_name: &str, _up: bool) -> nix::Result<()> {
        Err(Errno::ENOSYS)
    }

    pub fn set_ipv4(_name: &str, _addr: Ipv4Addr, _prefix: u8) -> nix::Result<()> {
        Err(Errno::ENOSYS)
    }

    pub fn clear_ipv4(_name: &str) -> nix::Result<()> {
        Err(Errno::ENOSYS)
    }

    pub fn enter_new_netns() -> nix::Result<OwnedFd> {
        Err(Errno::ENOSYS)
    }

    pub fn create_veth(_name: &str, _peer: &str, _peer_netns: BorrowedFd) -> nix::Result<()> {
        Err(Errno::ENOSYS)
    }
}
