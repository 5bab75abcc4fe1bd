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

fn main() -> std::io::Result<()> {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse().map_err(std::io::Error::other));
    let port: u16 = args.next().transpose()?.unwrap_or(8888);
    let count: u16 = args.next().transpose()?.unwrap_or(0);
    let mut stdout = std::io::stdout();

    let sock = UdpSocket::bind(("127.0.0.1", port))?; // 1. socket() + 2. bind(), one call
    writeln!(stdout, "listening on {}", sock.local_addr()?)?;
    let mut buf = [0u8; 1024];
    let mut served = 0;
    while count == 0 || served < count {
        let (len, addr) = match sock.recv_from(&mut buf) {
            // 3. recvfrom()
            Ok(got) => got,
            // Windows reports an earlier reply's "port unreachable" here (WinError 10054):
            // that client has gone, the server has not.
            Err(e) if e.kind() == ErrorKind::ConnectionReset => continue,
            Err(e) => return Err(e),
        };
        let data = &buf[..len];
        writeln!(stdout, "{addr} {}", String::from_utf8_lossy(data))?;
        sock.send_to(data, addr)?; // 4. sendto()
        served += 1;
    }
    drop(sock); // 5. close(): Rust closes a socket when it is dropped
    Ok(())
}
