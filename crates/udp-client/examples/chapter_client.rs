//! The chapter's UDP client in Rust, line for line beside `scripts/peers/chapter_client.py`:
//! socket, sendto, recvfrom, close. No bind: the OS picks the client's port. Start here;
//! then read `src/lib.rs`.
//!
//! ```sh
//! cargo run -p udp-server                                                 # terminal 1
//! cargo run -p udp-client --example chapter_client -- 127.0.0.1 8888 hello  # terminal 2
//! ```
//!
//! As the Python: HOST PORT MESSAGE (default 127.0.0.1 8888 hello), a 5-second timeout so
//! a lost reply cannot hang it, and a 1024-byte buffer like `recvfrom(1024)`.
use std::io::Write;
use std::net::UdpSocket;
use std::time::Duration;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "127.0.0.1".into());
    let port: u16 = args
        .next()
        .map_or(Ok(8888), |p| p.parse().map_err(std::io::Error::other))?;
    let message = args.next().unwrap_or_else(|| "hello".into());

    // 1. socket(): Rust's UdpSocket starts bound; port 0 lets the OS choose, as Python's
    // first sendto does for a socket that never called bind().
    let sock = UdpSocket::bind("0.0.0.0:0")?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))?; // sock.settimeout(5)
    sock.send_to(message.as_bytes(), (host.as_str(), port))?; // 2. sendto()
    let mut buf = [0u8; 1024];
    let (len, _addr) = sock.recv_from(&mut buf)?; // 3. recvfrom(): waits for the reply
    writeln!(std::io::stdout(), "{}", String::from_utf8_lossy(&buf[..len]))?;
    drop(sock); // 4. close(): Rust closes a socket when it is dropped
    Ok(())
}
