//! The chapter's broadcast, both ends, line for line beside `scripts/peers/chapter_broadcast_*.py`:
//! a sender (socket, SO_BROADCAST, sendto) and a listener (socket, bind to every address,
//! recvfrom). Start here; then read `src/send.rs` and `src/listen.rs`.
//!
//! ```sh
//! cargo run -p udp-broadcast --example chapter_broadcast -- listen 7788 10   # terminal 1
//! cargo run -p udp-broadcast --example chapter_broadcast -- send 7788 10     # terminal 2
//! ```
//!
//! The sender writes to 127.255.255.255, this machine's loopback broadcast: nothing leaves it.
use std::io::Write;
use std::net::UdpSocket;
use std::time::Duration;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u16| {
        args.get(i)
            .map_or(Ok(default), |a| a.parse().map_err(std::io::Error::other))
    };
    let (port, count) = (number(1, 7788)?, number(2, 10)?);
    let mut stdout = std::io::stdout();
    if args.first().map(String::as_str) == Some("send") {
        let sock = UdpSocket::bind("0.0.0.0:0")?; // 1. socket()
        sock.set_broadcast(true)?; // 2. SO_BROADCAST: without it, sendto fails with EACCES
        for n in 1..=count {
            let quote = format!("seq={n} AAPL {:.2}", 189.0 + f64::from(n) / 100.0);
            sock.send_to(quote.as_bytes(), ("127.255.255.255", port))?; // 3. sendto()
            std::thread::sleep(Duration::from_millis(20));
        }
        return Ok(()); // 4. close(): the socket is dropped here
    }
    // A broadcast reaches sockets bound to every address (0.0.0.0), not to 127.0.0.1.
    let sock = UdpSocket::bind(("0.0.0.0", port))?; // 1. socket() + 2. bind(('', PORT))
    writeln!(stdout, "listening on {}", sock.local_addr()?)?;
    let mut buf = [0u8; 65535];
    for _ in 0..count {
        let (len, _addr) = sock.recv_from(&mut buf)?; // 3. recvfrom()
        writeln!(stdout, "{}", String::from_utf8_lossy(&buf[..len]))?;
    }
    Ok(()) // 4. close(): the socket is dropped here
}
