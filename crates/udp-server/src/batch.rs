//! `--batch N` (Linux): `recvmmsg`/`sendmmsg` move up to N datagrams per system call
//! instead of one, the way high-rate UDP servers (DNS, QUIC) cut their per-datagram cost.
//!
//! This is not the chapter's loop (that is the shared receive path's plain `recv_from`);
//! it is the same work in bulk: receive what is queued (waiting only for the first),
//! print and answer each datagram, send all the answers in one call. std has no binding
//! for these calls; nix has safe ones. The system calls ([`receive_batch`], [`send_batch`])
//! stand apart from what is done with the data ([`serve`]).
//!
//! Two kernel offloads go further (see `common::offload`). Replies to one peer, back to
//! back and of one length (the echoes of a flood), leave in one GSO `sendmsg`, which the
//! kernel cuts into the same datagrams a `sendmmsg` would have sent: building each datagram
//! from the start, route lookup and all, is most of a send's cost, and GSO pays it once per
//! run. With `--offload` (GRO), one message may hold several datagrams of one sender; they
//! are cut apart here, each counted, printed, checked and cut to `--buffer-size` on its own.

use std::borrow::Cow;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::ops::Range;
use std::os::fd::AsRawFd;

use common::dest::{self, Arrival, Destination};
use common::offload::{self, Gso};
use common::output::Output;
use common::receive::{self, Got, Handler, Incoming, Receiver};
use common::shutdown::{Shutdown, is_earlier_send_error, is_wake_up};
use common::{Error, Result};
use nix::errno::Errno;
use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};

use crate::state::ServerState;

/// Receives, prints and answers datagrams N at a time until the count, a stop request or a
/// closed stdout. `gso`: send runs of replies with GSO where the kernel can.
pub(crate) fn serve(
    receiver: &mut Receiver,
    (batch, gso): (usize, bool),
    shutdown: &Shutdown,
    out: &Output,
    server: &mut ServerState,
) -> Result<()> {
    let options = *receiver.options();
    // One buffer per message, side by side, each one byte longer than --buffer-size so a
    // cut datagram is seen as cut (the receive path's one rule), or a whole GRO buffer; the
    // zeroed allocation is lazy, so untouched slots cost no memory.
    let slot = receive::slot_size(options.buffer_size, receiver.gro());
    let mut bufs = vec![0u8; batch * slot];
    let mut control = options.destination.then(dest::control_buffer);
    if receiver.gro() {
        control.get_or_insert_with(Vec::new).extend(offload::gro_control());
    }
    let mut headers = Headers {
        recv: MultiHeaders::preallocate(batch, control.clone()),
        send: MultiHeaders::preallocate(batch, None),
    };
    let mut gso = Gso::new(receiver.socket(), gso);
    let mut pieces = Vec::with_capacity(batch);
    while !shutdown.is_triggered() && !out.is_closed() {
        let room = options.count.map(|n| n.saturating_sub(server.summary.received));
        if room == Some(0) {
            break;
        }
        let want = room.map_or(batch, |r| batch.min(usize::try_from(r).unwrap_or(batch)));
        if control.is_some() {
            // The kernel shortens each message's control length to what it wrote (nothing,
            // for a datagram that came alone), and nix's recvmmsg does not restore it: a
            // GRO buffer landing in that slot next would lose its note and be taken for one
            // datagram. Fresh headers give every slot its whole control buffer again.
            headers.recv = MultiHeaders::preallocate(batch, control.clone());
        }
        let got = Slots {
            bufs: &mut bufs[..want * slot],
            slot,
            buffer_size: options.buffer_size,
        };
        receive_batch(receiver.socket(), &mut headers.recv, got, &mut pieces)?;
        // A GRO buffer may hold more datagrams than --count has room for: the rest are
        // unread, as they would have stayed in the queue.
        if let Some(room) = room.and_then(|r| usize::try_from(r).ok()).filter(|&r| pieces.len() > r) {
            receiver.leave_unread((pieces.len() - room) as u64);
            pieces.truncate(room);
        }
        let replies = answer_all(server, &bufs, &pieces)?;
        let incoming = |r: &Reply<'_>| pieces[r.answers].incoming(&bufs);
        // What went out is recorded after the kernel says so (--pcap).
        let mut went = |sent: &[Reply<'_>]| {
            server.record_replies(sent.iter().map(|r| (incoming(r), &*r.data)));
        };
        let sent = send_replies(receiver.socket(), &mut headers.send, &mut gso, &replies, &mut went);
        server.replied(sent);
    }
    Ok(())
}

/// Counts, prints and chooses the reply for every datagram of one batch.
fn answer_all<'c: 'b, 'b>(server: &mut ServerState<'c>, bufs: &'b [u8], pieces: &[Piece]) -> Result<Vec<Reply<'b>>> {
    let mut replies = Vec::with_capacity(pieces.len());
    for (i, piece) in pieces.iter().enumerate() {
        let datagram = piece.incoming(bufs);
        server.arrived(&datagram);
        if let Some(data) = server.print_and_choose_reply(&datagram)? {
            replies.push(Reply {
                to: piece.peer,
                data,
                answers: i,
            });
        }
    }
    Ok(replies)
}

/// One datagram of a batch: where its bytes are in the buffers, and who sent it where.
#[derive(Debug, Clone)]
struct Piece {
    bytes: Range<usize>,
    truncated: bool,
    peer: SocketAddr,
    to: Option<Destination>,
}

impl Piece {
    fn incoming<'b>(&self, bufs: &'b [u8]) -> Incoming<'b> {
        Incoming {
            data: &bufs[self.bytes.clone()],
            peer: self.peer,
            to: self.to,
            truncated: self.truncated,
            note: None,
        }
    }
}

/// A reply waiting to be sent: where it goes, its bytes, and the index of the datagram it
/// answers.
struct Reply<'a> {
    to: SocketAddr,
    data: Cow<'a, [u8]>,
    answers: usize,
}

impl AsRef<[u8]> for Reply<'_> {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

/// The message headers the kernel reads and fills, allocated once.
struct Headers {
    recv: MultiHeaders<SockaddrStorage>,
    send: MultiHeaders<SockaddrStorage>,
}

/// The buffers of one receive: `slot` bytes per message, datagrams kept up to
/// `buffer_size` bytes.
struct Slots<'b> {
    bufs: &'b mut [u8],
    slot: usize,
    buffer_size: usize,
}

/// Waits for the first datagram (up to the socket's read timeout), then takes whatever
/// else is already queued (MSG_WAITFORONE), one message per slot; each message's datagrams
/// (several for a GRO buffer) go into `pieces`. A timeout, a signal or an error about an
/// earlier send leaves `pieces` empty.
fn receive_batch(
    socket: &UdpSocket,
    headers: &mut MultiHeaders<SockaddrStorage>,
    slots: Slots<'_>,
    pieces: &mut Vec<Piece>,
) -> Result<()> {
    pieces.clear();
    let slot = slots.slot;
    let mut slices: Vec<[IoSliceMut; 1]> = slots.bufs.chunks_mut(slot).map(|b| [IoSliceMut::new(b)]).collect();
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
    for (i, msg) in received.enumerate() {
        let Some(peer) = msg.address.as_ref().and_then(dest::socket_addr) else {
            continue;
        };
        let cmsgs = msg.cmsgs().ok();
        let got = Got {
            arrival: Arrival {
                len: msg.bytes,
                peer,
                to: cmsgs.and_then(dest::destination),
            },
            segment: cmsgs.and_then(offload::gro_segment),
            overflowed: msg.flags.contains(MsgFlags::MSG_TRUNC),
        };
        let at = i * slot;
        for (range, truncated) in receive::datagrams(got, slots.buffer_size) {
            pieces.push(Piece {
                bytes: at + range.start..at + range.end,
                truncated,
                peer,
                to: got.arrival.to,
            });
        }
    }
    Ok(())
}

/// Sends every reply: runs to one peer with GSO (one call each), the rest with `sendmmsg`,
/// in the order they were chosen. Returns how many went out, and hands each part sent to
/// `went`. A run GSO cannot send goes the plain way, which says what fails.
fn send_replies(
    socket: &UdpSocket,
    headers: &mut MultiHeaders<SockaddrStorage>,
    gso: &mut Gso,
    replies: &[Reply<'_>],
    went: &mut dyn FnMut(&[Reply<'_>]),
) -> u64 {
    let (mut sent, mut plain_from, mut i) = (0, 0, 0);
    while i < replies.len() {
        let n = run_at(replies, i, gso);
        if n < 2 {
            i += 1;
            continue;
        }
        sent += send_batch(socket, headers, &replies[plain_from..i], went);
        let run = &replies[i..i + n];
        if let Ok(true) = gso.send(socket, Some(run[0].to), run) {
            went(run);
            sent += n as u64;
        } else {
            sent += send_batch(socket, headers, run, went);
        }
        i += n;
        plain_from = i;
    }
    sent + send_batch(socket, headers, &replies[plain_from..], went)
}

/// How many replies from `i` one GSO send can carry: same peer, lengths as
/// `offload::run_len` allows; 1 without GSO.
fn run_at(replies: &[Reply<'_>], i: usize, gso: &Gso) -> usize {
    if !gso.is_on() {
        return 1;
    }
    let to = replies[i].to;
    let same_peer = replies[i..].iter().take_while(|r| r.to == to).count();
    offload::run_len(&replies[i..i + same_peer], &to)
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
        let addrs: Vec<Option<SockaddrStorage>> = rest.iter().map(|r| Some(dest::storage(r.to))).collect();
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
