//! The chapter's UDP server in Rust, line for line beside `scripts/peers/chapter_server.py`:
//! socket, bind, then recvfrom and sendto in a loop. Start here; then read `src/lib.rs`.
//!
//! ```sh
//! cargo run -p udp-server --example chapter_server                 # terminal 1
//! python3 scripts/peers/chapter_client.py 127.0.0.1 8888 hello      # terminal 2
//! ```
//!
//! As the Python: optional PORT (default 8888, 0 = any free port) and COUNT (stop after
//! COUNT datagrams; 0 = never). The buffer is 1024 bytes, like `recvfrom(1024)`: a longer
//! datagram is cut, silently. Bound to 127.0.0.1, so only this machine can reach it.
use std::io::{ErrorKind, Write};
use std::net::UdpSocket;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u16| args.get(i).map_or(Ok(default), |a| a.parse());
    let (Ok(port), Ok(count), 0..=2) = (number(0, 8888), number(1, 0), args.len()) else {
        eprintln!("usage: chapter_server [PORT [COUNT]]");
        std::process::exit(2);
    };
    let at = format!("127.0.0.1:{port}");
    let sock = check(UdpSocket::bind(&at), "cannot bind", &at); // 1. socket() + 2. bind(), one call
    let mut stdout = std::io::stdout(); // below, a closed stdout stops nothing: `let _ =`
    let _ = writeln!(stdout, "listening on {}", check(sock.local_addr(), "cannot bind", &at));
    let mut buf = [0u8; 1024];
    let mut served = 0;
    while count == 0 || served < count {
        let (len, addr) = match sock.recv_from(&mut buf) {
            // 3. recvfrom()
            Ok(got) => got,
            // Windows reports a gone client's ICMP "port unreachable" here (WinError 10054).
            Err(e) if e.kind() == ErrorKind::ConnectionReset => continue,
            Err(e) => check(Err(e), "cannot receive on", &at),
        };
        let data = &buf[..len];
        let _ = writeln!(stdout, "{addr} {}", String::from_utf8_lossy(data));
        check(sock.send_to(data, addr), "cannot reply from", &at); // 4. sendto()
        served += 1;
    }
} // 5. close(): Rust closes a socket when it goes out of scope

/// On an error: one line, the OS's words without Rust's "(os error 98)", and exit code 1.
fn check<T>(result: std::io::Result<T>, what: &str, at: &str) -> T {
    result.unwrap_or_else(|e| {
        let text = e.to_string().to_lowercase();
        eprintln!("{what} {at}: {}", text.split(" (os error").next().unwrap_or(&text));
        std::process::exit(1)
    })
}
