//! `--batch N` (Linux): `recvmmsg`/`sendmmsg` move up to N datagrams per system call
//! instead of one, the way high-rate UDP servers (DNS, QUIC) cut their per-datagram cost.
//!
//! This is not the chapter's loop (that is the shared receive path's plain `recv_from`);
//! it is the same work in bulk: receive what is queued (waiting only for the first),
//! print and answer each datagram, send all the answers in one call. std has no binding
//! for these calls; nix has safe ones. The system calls ([`receive_batch`], [`send_batch`])
//! stand apart from what is done with the data ([`serve`]).

use std::io::{self, IoSlice, IoSliceMut};
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

use common::dest::{self, Arrival};
use common::output::Output;
use common::receive::{Handler, Incoming, Receiver, kept};
use common::shutdown::{Shutdown, is_earlier_send_error, is_wake_up};
use common::{Error, Result};
use nix::errno::Errno;
use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};

use crate::state::ServerState;

/// Receives, prints and answers datagrams N at a time until the count, a stop request or a
/// closed stdout.
pub(crate) fn serve(
    receiver: &Receiver,
    batch: usize,
    shutdown: &Shutdown,
    out: &Output,
    server: &mut ServerState,
) -> Result<()> {
    let (socket, options) = (receiver.socket(), receiver.options());
    // One buffer per datagram, side by side, each one byte longer than --buffer-size so a
    // cut datagram is seen as cut (the receive path's one rule); the zeroed allocation is
    // lazy, so untouched slots cost no memory.
    let slot = options.buffer_size + 1;
    let mut bufs = vec![0u8; batch * slot];
    let mut headers = Headers {
        recv: MultiHeaders::preallocate(batch, options.destination.then(dest::control_buffer)),
        send: MultiHeaders::preallocate(batch, None),
    };
    let mut arrivals = Vec::with_capacity(batch);
    while !shutdown.is_triggered() && !out.is_closed() {
        let want = match options.count {
            Some(n) if server.summary.received >= n => break,
            Some(n) => batch.min((n - server.summary.received) as usize),
            None => batch,
        };
        receive_batch(socket, &mut headers.recv, &mut bufs[..want * slot], slot, &mut arrivals)?;
        let incoming = |i: usize| {
            let arrival: &Arrival = &arrivals[i];
            let (len, truncated) = kept(arrival.len, options.buffer_size);
            Incoming {
                data: &bufs[i * slot..i * slot + len],
                peer: arrival.peer,
                to: arrival.to,
                truncated,
                note: None,
            }
        };
        let mut replies = Vec::with_capacity(arrivals.len());
        for (i, arrival) in arrivals.iter().enumerate() {
            let datagram = incoming(i);
            server.arrived(&datagram);
            if let Some(reply) = server.print_and_choose_reply(&datagram)? {
                replies.push(Reply {
                    to: Some(dest::storage(arrival.peer)),
                    data: reply,
                    answers: i,
                });
            }
        }
        // What went out is recorded after sendmmsg says so (--pcap).
        let mut went = |sent: &[Reply<'_>]| {
            server.record_replies(sent.iter().map(|r| (incoming(r.answers), &*r.data)));
        };
        let sent = send_batch(socket, &mut headers.send, &replies, &mut went);
        server.replied(sent);
    }
    Ok(())
}

/// A reply waiting for `sendmmsg`: where it goes, its bytes, and the index of the datagram
/// it answers.
struct Reply<'a> {
    to: Option<SockaddrStorage>,
    data: std::borrow::Cow<'a, [u8]>,
    answers: usize,
}

/// The message headers the kernel reads and fills, allocated once.
struct Headers {
    recv: MultiHeaders<SockaddrStorage>,
    send: MultiHeaders<SockaddrStorage>,
}

/// Waits for the first datagram (up to the socket's read timeout), then takes whatever
/// else is already queued (MSG_WAITFORONE), into consecutive `slot`-sized pieces of `bufs`.
/// A timeout, a signal or an error about an earlier send leaves `arrivals` empty.
fn receive_batch(
    socket: &UdpSocket,
    headers: &mut MultiHeaders<SockaddrStorage>,
    bufs: &mut [u8],
    slot: usize,
    arrivals: &mut Vec<Arrival>,
) -> Result<()> {
    arrivals.clear();
    let mut slices: Vec<[IoSliceMut; 1]> = bufs.chunks_mut(slot).map(|b| [IoSliceMut::new(b)]).collect();
    let received = match recvmmsg(
        socket.as_raw_fd(),
        headers,
        slices.iter_mut(),
        MsgFlags::MSG_WAITFORONE,
        None,
    ) {
        Ok(received) => received,
        Err(errno) => {
            let e = io::Error::from(errno);
            if is_wake_up(&e) || is_earlier_send_error(&e) {
                return Ok(());
            }
            return Err(Error::io("recvmmsg failed", &e));
        }
    };
    for msg in received {
        let Some(peer) = msg.address.as_ref().and_then(dest::socket_addr) else {
            continue;
        };
        let to = msg.cmsgs().ok().and_then(dest::destination);
        arrivals.push(Arrival {
            len: msg.bytes,
            peer,
            to,
        });
    }
    Ok(())
}

/// Sends every reply, as many per call as the kernel takes; returns how many went out, and
/// hands each run of replies sent to `went`. A reply that cannot go out (full buffer, ICMP
/// error from an earlier send) is lost, as any UDP datagram may be.
fn send_batch(
    socket: &UdpSocket,
    headers: &mut MultiHeaders<SockaddrStorage>,
    replies: &[Reply<'_>],
    went: &mut dyn FnMut(&[Reply<'_>]),
) -> u64 {
    let mut done = 0;
    let mut sent = 0;
    while done < replies.len() {
        let rest = &replies[done..];
        let slices: Vec<[IoSlice; 1]> = rest.iter().map(|r| [IoSlice::new(&r.data)]).collect();
        let addrs: Vec<Option<SockaddrStorage>> = rest.iter().map(|r| r.to).collect();
        let no_control: [ControlMessage; 0] = [];
        match sendmmsg(
            socket.as_raw_fd(),
            headers,
            &slices,
            &addrs,
            no_control,
            MsgFlags::empty(),
        ) {
            Ok(results) => {
                let n = results.count();
                went(&rest[..n]);
                done += n.max(1);
                sent += n as u64;
            }
            Err(Errno::EINTR) => {}
            Err(errno) => {
                let e = io::Error::from(errno);
                log::warn!(
                    "a reply was not sent: {}{}",
                    common::error::describe(&e),
                    common::error::hint(&e)
                );
                done += 1;
            }
        }
    }
    sent
}
