//! Moving datagrams in batches: one `recvmmsg(2)` takes every waiting packet (up to [`BATCH`])
//! and one `sendmmsg(2)` sends all their replies, so a busy socket costs two system calls per
//! batch rather than two per packet. The buffers live as long as the socket's thread, so
//! nothing is allocated per packet. The only `unsafe` of the UDP tracker is here, around the
//! two calls and the address structures they fill.

use log::debug;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;

/// Most packets taken by one receive.
pub const BATCH: usize = 32;
/// Receive buffer: larger than any valid request (a full scrape is 1,496 bytes), so a packet
/// that fills it is oversized and dropped.
pub const BUFFER: usize = 2048;

/// One thread's packets, their sources and their replies.
pub struct Batch {
    packets: Vec<[u8; BUFFER]>,
    lens: [usize; BATCH],
    sources: [libc::sockaddr_storage; BATCH],
    source_lens: [libc::socklen_t; BATCH],
    /// Reply to packet `i`, sent when `ready[i]`.
    replies: Vec<Vec<u8>>,
    ready: [bool; BATCH],
    count: usize,
}

impl Batch {
    pub fn new() -> Batch {
        Batch {
            packets: vec![[0; BUFFER]; BATCH],
            lens: [0; BATCH],
            // SAFETY: all-zero bytes are a valid (empty) sockaddr_storage.
            sources: unsafe { zeroed() },
            source_lens: [0; BATCH],
            replies: (0..BATCH).map(|_| Vec::with_capacity(BUFFER)).collect(),
            ready: [false; BATCH],
            count: 0,
        }
    }

    /// Waits (up to the socket's read time-out) for a packet, then takes it and every other
    /// one already waiting, up to [`BATCH`]. Returns how many.
    pub fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        // SAFETY: zeroed iovec and mmsghdr are valid; every pointer set below points into
        // `self`, which outlives the call, with the lengths of the buffers it points to.
        let mut iovecs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut messages: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for i in 0..BATCH {
            iovecs[i].iov_base = self.packets[i].as_mut_ptr().cast();
            iovecs[i].iov_len = BUFFER;
            let header = &mut messages[i].msg_hdr;
            header.msg_name = (&mut self.sources[i] as *mut libc::sockaddr_storage).cast();
            header.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_iov = &mut iovecs[i];
            header.msg_iovlen = 1;
        }
        let got = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                messages.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if got < 0 {
            self.count = 0;
            return Err(io::Error::last_os_error());
        }
        self.count = got as usize;
        for (i, message) in messages.iter().take(self.count).enumerate() {
            self.lens[i] = message.msg_len as usize;
            self.source_lens[i] = message.msg_hdr.msg_namelen;
            self.ready[i] = false;
        }
        Ok(self.count)
    }

    /// Calls `answer` on each packet received (with its source), which writes the reply into
    /// the buffer it is given and says whether to send it. Oversized packets (they filled the
    /// buffer) and ones from an address family other than IP are dropped.
    pub fn answer_each(&mut self, mut answer: impl FnMut(&[u8], SocketAddr, &mut Vec<u8>) -> bool) {
        for i in 0..self.count {
            let Some(from) = source(&self.sources[i], self.source_lens[i]) else {
                continue;
            };
            if self.lens[i] >= BUFFER {
                debug!("udp tracker: dropped an oversized packet from {from}");
                continue;
            }
            self.ready[i] = answer(&self.packets[i][..self.lens[i]], from, &mut self.replies[i]);
        }
    }

    /// Sends every ready reply to the address its packet came from. A reply the kernel refuses
    /// (an ICMP error of an earlier one can surface here) is skipped, not fatal.
    pub fn send(&mut self, socket: &UdpSocket) {
        // SAFETY: as in `receive`; the replies are only read.
        let mut iovecs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut messages: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        let mut count = 0;
        for i in (0..self.count).filter(|&i| self.ready[i]) {
            iovecs[count].iov_base = self.replies[i].as_mut_ptr().cast();
            iovecs[count].iov_len = self.replies[i].len();
            let header = &mut messages[count].msg_hdr;
            header.msg_name = (&mut self.sources[i] as *mut libc::sockaddr_storage).cast();
            header.msg_namelen = self.source_lens[i];
            header.msg_iov = &mut iovecs[count];
            header.msg_iovlen = 1;
            count += 1;
        }
        let mut done = 0;
        while done < count {
            let sent = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    messages[done..].as_mut_ptr(),
                    (count - done) as libc::c_uint,
                    0,
                )
            };
            if sent < 0 {
                debug!(
                    "udp tracker: a reply failed: {}",
                    io::Error::last_os_error()
                );
                done += 1;
            } else {
                done += sent as usize;
            }
        }
        self.count = 0;
    }
}

/// The IP address in a source filled by `recvmmsg`.
fn source(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match storage.ss_family as libc::c_int {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and it is aligned for one.
            let v4 =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)),
                u16::from_be(v4.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let v6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(v6.sin6_addr.s6_addr),
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}
