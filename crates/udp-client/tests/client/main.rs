//! udp-client's tests: the real binary against a peer socket written here, asserting on
//! what the peer saw and what the client printed.

mod devices;
mod expect;
mod hostile;
mod modes;
#[cfg(target_os = "linux")]
mod offload;
mod pcap;
mod replay;
mod script;
mod sources;
mod truth;
mod usage;

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use testkit::WAIT;

const BIN: &str = env!("CARGO_BIN_EXE_udp-client");

/// A UDP peer on 127.0.0.1:0 that answers the n-th datagram (from 0) with whatever
/// `answer` returns, and reports every datagram it saw. It stops by itself after
/// `2 × WAIT`, so a failed test leaves nothing running.
struct Peer {
    addr: SocketAddr,
    seen: Receiver<(Vec<u8>, SocketAddr)>,
}

impl Peer {
    fn new(answer: impl Fn(usize, &[u8]) -> Vec<Vec<u8>> + Send + 'static) -> Self {
        Self::on(UdpSocket::bind("127.0.0.1:0").unwrap(), answer)
    }

    fn echo() -> Self {
        Self::new(|_, data| vec![data.to_vec()])
    }

    fn silent() -> Self {
        Self::new(|_, _| Vec::new())
    }

    fn on(socket: UdpSocket, answer: impl Fn(usize, &[u8]) -> Vec<Vec<u8>> + Send + 'static) -> Self {
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let addr = socket.local_addr().unwrap();
        let (tx, seen) = mpsc::channel();
        thread::spawn(move || {
            let end = Instant::now() + 2 * WAIT;
            let mut n = 0;
            while Instant::now() < end {
                let Ok((data, from)) = testkit::recv(&socket) else {
                    continue;
                };
                for reply in answer(n, &data) {
                    let _ = socket.send_to(&reply, from);
                }
                n += 1;
                if tx.send((data, from)).is_err() {
                    return;
                }
            }
        });
        Peer { addr, seen }
    }

    /// The next datagram the peer saw, within `WAIT`.
    fn next(&self) -> (Vec<u8>, SocketAddr) {
        self.seen.recv_timeout(WAIT).expect("the peer received a datagram")
    }

    /// Every datagram seen so far, waiting `within` for more.
    fn all(&self, within: Duration) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        while let Ok((data, _)) = self.seen.recv_timeout(within) {
            all.push(data);
        }
        all
    }
}

use testkit::closed_port;
