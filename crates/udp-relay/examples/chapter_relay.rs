//! The chapter's two programs in one: a relay. To its clients it is the server (socket,
//! bind, recvfrom, sendto); to the real server it is a client, one socket per client, so
//! each reply finds its way back. Std only; the crate's `udp-relay` is the tool.
//!
//! ```sh
//! cargo run -p udp-server                                  # the server, port 8888
//! cargo run -p udp-relay --example chapter_relay 9000 8888 # the relay, port 9000
//! cargo run -p udp-client -- 127.0.0.1:9000 hello          # a client, through the relay
//! ```
use std::collections::{HashMap, hash_map::Entry};
use std::net::{SocketAddr, UdpSocket};
use std::thread;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u16>().ok());
    let port = args.next().flatten().unwrap_or(9000);
    let server = SocketAddr::from(([127, 0, 0, 1], args.next().flatten().unwrap_or(8888)));
    let sock = UdpSocket::bind(("127.0.0.1", port))?; // 1. socket() and 2. bind()
    println!("listening on {}", sock.local_addr()?);
    let mut upstream: HashMap<SocketAddr, UdpSocket> = HashMap::new();
    let mut buf = [0u8; 65535];
    loop {
        let (n, client) = sock.recv_from(&mut buf)?; // 3. recvfrom() a client
        let up = match upstream.entry(client) {
            Entry::Occupied(known) => known.into_mut(),
            // 4. On first sight, the client's own socket to the server (port 0: the OS
            // picks one, as the chapter's client lets it), and a thread that carries the
            // server's replies back: recvfrom() the server, sendto() this client.
            Entry::Vacant(new) => {
                let up = UdpSocket::bind("127.0.0.1:0")?;
                let (back, down) = (up.try_clone()?, sock.try_clone()?);
                thread::spawn(move || -> std::io::Result<()> {
                    let mut buf = [0u8; 65535];
                    loop {
                        let (n, _) = back.recv_from(&mut buf)?;
                        down.send_to(&buf[..n], client)?;
                    }
                });
                new.insert(up)
            }
        };
        up.send_to(&buf[..n], server)?; // 5. sendto() the server
    }
}
