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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let host = args.first().map_or("127.0.0.1", String::as_str);
    let port = args.get(1).map_or(Ok(8888), |p| p.parse::<u16>());
    let message = args.get(2).map_or("hello", String::as_str);
    let (Ok(port), 0..=3, false) = (port, args.len(), host.starts_with('-')) else {
        eprintln!("usage: chapter_client HOST PORT MESSAGE");
        std::process::exit(2);
    };
    let to = format!("{host}:{port}");
    // 1. socket(): Rust's UdpSocket starts bound; port 0 lets the OS choose, as Python's
    // first sendto does for a socket that never called bind().
    let sock = check(UdpSocket::bind("0.0.0.0:0"), "cannot open a socket for", &to);
    let timeout = sock.set_read_timeout(Some(Duration::from_secs(5))); // sock.settimeout(5)
    check(timeout, "cannot set a timeout for", &to);
    check(sock.send_to(message.as_bytes(), (host, port)), "cannot send to", &to); // 2. sendto()
    let mut buf = [0u8; 1024];
    // 3. recvfrom(): waits for the reply, 5 s at most (Windows fails at once if nothing listens).
    let (len, _addr) = sock.recv_from(&mut buf).unwrap_or_else(|_| {
        eprintln!("no reply within 5 s: is a server running on {to}?");
        std::process::exit(1)
    });
    let _ = writeln!(std::io::stdout(), "{}", String::from_utf8_lossy(&buf[..len]));
    drop(sock); // 4. close(): Rust closes a socket when it is dropped
}

/// On an error: one line, the OS's words without Rust's "(os error 98)", and exit code 1.
fn check<T>(result: std::io::Result<T>, what: &str, at: &str) -> T {
    result.unwrap_or_else(|e| {
        let text = e.to_string().to_lowercase();
        eprintln!("{what} {at}: {}", text.split(" (os error").next().unwrap_or(&text));
        std::process::exit(1)
    })
}
