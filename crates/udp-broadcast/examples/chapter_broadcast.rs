//! The chapter's broadcast, both ends, line for line beside `scripts/peers/chapter_broadcast_*.py`:
//! a sender (socket, SO_BROADCAST, sendto 127.255.255.255: loopback, nothing leaves this machine)
//! and a listener (socket, bind to every address, recvfrom). Then read `src/send.rs`, `src/listen.rs`.
//!
//! ```sh
//! cargo run -p udp-broadcast --example chapter_broadcast -- listen 7788 10   # terminal 1
//! cargo run -p udp-broadcast --example chapter_broadcast -- send 7788 10     # terminal 2
//! ```
use std::io::Write;
use std::net::UdpSocket;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u16| args.get(i).map_or(Ok(default), |a| a.parse());
    let mode = args.first().map_or("", String::as_str);
    let (Ok(port), Ok(count), "send" | "listen", 1..=3) = (number(1, 7788), number(2, 10), mode, args.len()) else {
        eprintln!("usage: chapter_broadcast send|listen [PORT [COUNT]]   (default 7788 10)");
        std::process::exit(2);
    };
    if mode == "send" {
        let to = format!("127.255.255.255:{port}");
        let sock = check(UdpSocket::bind("0.0.0.0:0"), "cannot open a socket for", &to); // 1. socket()
        check(sock.set_broadcast(true), "cannot allow broadcast to", &to); // 2. SO_BROADCAST, or EACCES
        for n in 1..=count {
            let quote = format!("seq={n} AAPL {:.2}", 189.0 + f64::from(n) / 100.0);
            check(sock.send_to(quote.as_bytes(), &to), "cannot send to", &to); // 3. sendto()
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        return; // 4. close(): the socket is dropped here
    }
    // A broadcast reaches sockets bound to every address (0.0.0.0), not to 127.0.0.1.
    let at = format!("0.0.0.0:{port}");
    let sock = check(UdpSocket::bind(&at), "cannot bind", &at); // 1. socket() + 2. bind(('', PORT))
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {}", check(sock.local_addr(), "cannot bind", &at));
    let mut buf = [0u8; 65535];
    for _ in 0..count {
        let (len, _addr) = check(sock.recv_from(&mut buf), "cannot receive on", &at); // 3. recvfrom()
        let _ = writeln!(stdout, "{}", String::from_utf8_lossy(&buf[..len]));
    }
} // 4. close(): the socket is dropped here

/// On an error: one line, the OS's words without Rust's "(os error 98)", and exit code 1.
fn check<T>(result: std::io::Result<T>, what: &str, at: &str) -> T {
    result.unwrap_or_else(|e| {
        let text = e.to_string().to_lowercase();
        eprintln!("{what} {at}: {}", text.split(" (os error").next().unwrap_or(&text));
        std::process::exit(1)
    })
}
