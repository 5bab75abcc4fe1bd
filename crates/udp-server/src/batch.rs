//! `--batch N` (Linux): `recvmmsg`/`sendmmsg` move up to N datagrams per system call
//! instead of one, the way high-rate UDP servers (DNS, QUIC) cut their per-datagram cost.
//!
//! This is not the chapter's loop (that is [`crate::run`]'s plain `recv_from`/`send_to`);
//! it is the same work in bulk: receive what is queued (waiting only for the first),
//! print and answer each datagram, send all the answers in one call. std has no binding
//! for these calls, so this module talks to the C library through `libc`, with each unsafe
//! step said and justified.

use std::io;
use std::mem::zeroed;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::ptr::null_mut;

use common::dest::{ControlBuffer, destination, socket_addr};
use common::output::Output;
use common::shutdown::{Shutdown, is_earlier_send_error, is_wake_up};
use common::{Error, Result};

use crate::{Config, Stats, show};

/// The largest `--batch`: beyond this the kernel gains nothing and memory grows.
pub const MAX_BATCH: usize = 1024;

/// Receives, prints and answers datagrams N at a time until the count, a stop request or a
/// closed stdout.
pub(crate) fn serve(
    socket: &UdpSocket,
    batch: usize,
    config: &Config,
    shutdown: &Shutdown,
    out: &Output,
    stats: &mut Stats,
) -> Result<()> {
    let slot = config.buffer_size;
    let fd = socket.as_raw_fd();
    // One buffer per datagram, side by side; the zeroed allocation is lazy, so untouched
    // slots cost no memory.
    let mut bufs = vec![0u8; batch * slot];
    // SAFETY: all-zero bytes are a valid sockaddr_storage, iovec and mmsghdr (an unspecified
    // address, null pointers and zero lengths).
    let mut addrs: Vec<libc::sockaddr_storage> = (0..batch).map(|_| unsafe { zeroed() }).collect();
    let mut iovs: Vec<libc::iovec> = (0..batch).map(|_| unsafe { zeroed() }).collect();
    let mut msgs: Vec<libc::mmsghdr> = (0..batch).map(|_| unsafe { zeroed() }).collect();
    // Room for each datagram's destination, when the socket asked for it (IP_PKTINFO).
    let mut controls: Vec<ControlBuffer> = vec![[0; 16]; batch];
    let mut reply_iovs: Vec<libc::iovec> = (0..batch).map(|_| unsafe { zeroed() }).collect();
    let mut replies: Vec<libc::mmsghdr> = (0..batch).map(|_| unsafe { zeroed() }).collect();

    // The receive headers are built once; the kernel changes only msg_len, msg_namelen and
    // msg_flags, which are reset before each call.
    let base = bufs.as_mut_ptr();
    for i in 0..batch {
        // SAFETY: i * slot + slot <= bufs.len(), so the pointer stays inside `bufs`.
        iovs[i] = libc::iovec {
            iov_base: unsafe { base.add(i * slot) }.cast(),
            iov_len: slot,
        };
        msgs[i] = header(&mut addrs[i], size_of_storage(), &mut iovs[i]);
        msgs[i].msg_hdr.msg_control = controls[i].as_mut_ptr().cast();
    }

    while !shutdown.is_triggered() && !out.is_closed() {
        let want = match config.count {
            Some(n) if stats.summary.received >= n => break,
            Some(n) => batch.min((n - stats.summary.received) as usize),
            None => batch,
        };
        for m in &mut msgs[..want] {
            m.msg_hdr.msg_namelen = size_of_storage();
            m.msg_hdr.msg_controllen = size_of::<ControlBuffer>();
            m.msg_hdr.msg_flags = 0;
        }
        // Wait for the first datagram (up to the socket's read timeout), then take whatever
        // else is already queued: MSG_WAITFORONE.
        // SAFETY: the first `want` headers point into `bufs`, `addrs`, `iovs` and `controls`, which live
        // past the call and are not touched by Rust during it; the kernel writes at most
        // iov_len bytes per buffer and msg_namelen bytes per address.
        let got = unsafe { libc::recvmmsg(fd, msgs.as_mut_ptr(), want as u32, libc::MSG_WAITFORONE, null_mut()) };
        if got < 0 {
            let e = io::Error::last_os_error();
            if is_wake_up(&e) || is_earlier_send_error(&e) {
                continue;
            }
            return Err(Error::io("recvmmsg failed", &e));
        }

        let mut answers = 0;
        for i in 0..got as usize {
            let Some(peer) = socket_addr(&addrs[i]) else { continue };
            let len = (msgs[i].msg_len as usize).min(slot);
            let truncated = msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            // SAFETY: the kernel wrote `len` (<= slot) bytes at this slot of `bufs`, which no
            // Rust reference borrows; reading them through the pointer the kernel used is sound.
            let data = unsafe { std::slice::from_raw_parts(base.add(i * slot).cast_const(), len) };
            // SAFETY: recvmmsg filled this header; its control buffer is `controls[i]`, alive.
            let to = unsafe { destination(&msgs[i].msg_hdr) };
            stats.record(peer, len, truncated);
            if let Some(reply) = show(config, out, stats, data, peer, to, truncated, None)? {
                // The kernel only reads a reply, so a pointer cast to *mut is sound.
                reply_iovs[answers] = libc::iovec {
                    iov_base: reply.as_ptr().cast_mut().cast(),
                    iov_len: reply.len(),
                };
                replies[answers] = header(&mut addrs[i], msgs[i].msg_hdr.msg_namelen, &mut reply_iovs[answers]);
                answers += 1;
            }
        }

        let mut sent = 0;
        while sent < answers {
            // SAFETY: headers sent..answers point at live replies (in `bufs` or the fixed
            // reply text) and addresses; the kernel only reads them.
            let n = unsafe { libc::sendmmsg(fd, replies[sent..].as_mut_ptr(), (answers - sent) as u32, 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    // The reply at `sent` could not go out (full buffer, ICMP error from an
                    // earlier send): it is lost, as any UDP datagram may be; go on.
                    log::warn!("a reply was not sent: {}", common::error::describe(&e));
                    sent += 1;
                }
                continue;
            }
            sent += n as usize;
            stats.summary.replied += n as u64;
        }
    }
    Ok(())
}

fn size_of_storage() -> libc::socklen_t {
    std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t
}

/// A one-buffer message header for `addr` and `iov`.
fn header(addr: &mut libc::sockaddr_storage, addr_len: libc::socklen_t, iov: &mut libc::iovec) -> libc::mmsghdr {
    // SAFETY: all-zero is a valid mmsghdr; the fields that matter are set below.
    let mut m: libc::mmsghdr = unsafe { zeroed() };
    m.msg_hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
    m.msg_hdr.msg_namelen = addr_len;
    m.msg_hdr.msg_iov = iov;
    m.msg_hdr.msg_iovlen = 1;
    m
}
