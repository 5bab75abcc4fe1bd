//! One error type for the programs: a one-line message and the exit code it maps to.

use std::fmt;

/// What went wrong, sorted by who can fix it: the user's input (exit 2) or the run (exit 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A value the user gave cannot be used: a bad address, encoding, size. Exit code 2.
    Usage(String),
    /// The run failed: bind refused, no reply, nobody listening. Exit code 1.
    Runtime(String),
}

impl Error {
    /// The process exit code for this error: 2 for bad usage, 1 for a runtime failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::Runtime(_) => 1,
        }
    }

    /// Writing to stdout failed (other than by a closed pipe, which is a quiet stop).
    pub fn stdout(err: std::io::Error) -> Self {
        Self::io("cannot write to stdout", &err)
    }

    /// A runtime error that names what failed and the OS error behind it, with what to try
    /// for the errors a learner meets (see [`hint`]).
    pub fn io(what: impl fmt::Display, err: &std::io::Error) -> Self {
        Error::Runtime(format!("{what}: {}{}", describe(err), hint(err)))
    }

    /// A file the user named cannot be opened or read: a usage error (exit 2) when the name
    /// is at fault (missing, a directory, no permission), a runtime one (exit 1) when the
    /// machine is (too many open files, a full disk, an I/O error).
    pub fn path(what: impl fmt::Display, err: &std::io::Error) -> Self {
        use std::io::ErrorKind::{
            InvalidInput, IsADirectory, NotADirectory, NotFound, PermissionDenied, ReadOnlyFilesystem,
        };
        let message = format!("{what}: {}{}", describe(err), hint(err));
        match err.kind() {
            NotFound | PermissionDenied | IsADirectory | NotADirectory | InvalidInput | ReadOnlyFilesystem => {
                Error::Usage(message)
            }
            _ => Error::Runtime(message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) | Error::Runtime(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for results whose error is [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Windows' WSAECONNRESET: an ICMP "port unreachable" for an earlier datagram, reported on
/// the next receive — on Windows even by a socket that never called `connect`.
pub const WSAECONNRESET: i32 = 10054;
/// Windows' WSAENETRESET: the same for an ICMP "time exceeded" (since Vista).
pub const WSAENETRESET: i32 = 10052;

#[cfg(windows)]
const _: () = assert!(
    WSAECONNRESET == windows_sys::Win32::Networking::WinSock::WSAECONNRESET
        && WSAENETRESET == windows_sys::Win32::Networking::WinSock::WSAENETRESET
);

/// Whether a send or receive error means "nobody is listening there" (an ICMP port
/// unreachable came back). Linux and macOS report it as ECONNREFUSED, and only to a
/// connected socket; Windows as WSAECONNRESET or WSAENETRESET, connected or not.
pub fn is_port_unreachable(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
    ) || matches!(err.raw_os_error(), Some(WSAECONNRESET | WSAENETRESET))
}

/// EMSGSIZE, "message too long": the datagram is over the protocol's or the interface's
/// limit. std has no `ErrorKind` for it, so the platform's own number is compared.
#[cfg(unix)]
const EMSGSIZE: i32 = nix::libc::EMSGSIZE;
#[cfg(windows)]
const EMSGSIZE: i32 = windows_sys::Win32::Networking::WinSock::WSAEMSGSIZE;
#[cfg(not(any(unix, windows)))]
const EMSGSIZE: i32 = 90;

/// Whether a send failed because the datagram is too long for one datagram.
pub fn is_message_too_long(err: &std::io::Error) -> bool {
    err.raw_os_error() == Some(EMSGSIZE)
}

/// What to try after an OS error a learner meets, as ` (…)` to append, or nothing.
pub fn hint(err: &std::io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(code) if code == EMSGSIZE => {
            " (one UDP datagram carries at most 65507 bytes over IPv4, 65527 over IPv6; send less)"
        }
        Some(code) if code == EAFNOSUPPORT => {
            " (the address is of the other family: an IPv4 socket cannot reach an IPv6 address, or this machine has no IPv6; use 127.0.0.1 or ::1 on both sides)"
        }
        Some(code) if code == EMFILE || code == ENFILE => {
            " (too many open files: close some, or raise the limit, e.g. ulimit -n 4096)"
        }
        Some(code) if code == ENOSPC => " (the disk is full: free space or write elsewhere)",
        _ => "",
    }
}

#[cfg(unix)]
const EAFNOSUPPORT: i32 = nix::libc::EAFNOSUPPORT;
#[cfg(windows)]
const EAFNOSUPPORT: i32 = windows_sys::Win32::Networking::WinSock::WSAEAFNOSUPPORT;
#[cfg(not(any(unix, windows)))]
const EAFNOSUPPORT: i32 = 97;
#[cfg(unix)]
const EMFILE: i32 = nix::libc::EMFILE;
#[cfg(unix)]
const ENFILE: i32 = nix::libc::ENFILE;
#[cfg(unix)]
const ENOSPC: i32 = nix::libc::ENOSPC;
// Windows' C runtime numbers (what std reports for file errors there are Win32 codes, which
// these do not match; the hint is then simply left out).
#[cfg(not(unix))]
const EMFILE: i32 = 24;
#[cfg(not(unix))]
const ENFILE: i32 = 23;
#[cfg(not(unix))]
const ENOSPC: i32 = 28;

/// `cannot bind ADDR: REASON (HINT)`: what failed, and what to try (servers, listeners, and
/// a client's `--bind`).
pub fn bind_error(addr: std::net::SocketAddr, err: &std::io::Error) -> Error {
    use std::io::ErrorKind;
    let hint = match err.kind() {
        ErrorKind::AddrInUse => format!(
            " (is another server running? try another port, e.g. --bind {} for any free one)",
            std::net::SocketAddr::new(addr.ip(), 0)
        ),
        ErrorKind::AddrNotAvailable if addr.is_ipv6() => {
            " (that address is not one of this machine's; try [::1] or [::])".into()
        }
        ErrorKind::AddrNotAvailable => " (that address is not one of this machine's; try 127.0.0.1 or 0.0.0.0)".into(),
        ErrorKind::PermissionDenied => " (ports below 1024 need root; try a port above 1023)".into(),
        _ => hint(err).to_string(),
    };
    Error::Runtime(format!("cannot bind {addr}: {}{hint}", describe(err)))
}

/// The most characters of user input an error or a log line repeats.
pub const ECHO_MAX: usize = 80;

/// User input (a rule, a file name, a value) as an error or a log line may repeat it: control
/// characters escaped (`\u{1b}`, `\0`), so a rule file cannot move the cursor, retitle the
/// terminal or hide text, and cut after [`ECHO_MAX`] characters, so a bad 2 MB rule is not a
/// 2 MB error line.
///
/// # Examples
/// ```
/// assert_eq!(common::error::echo("a\u{1b}]0;x\u{7}b"), "a\\u{1b}]0;x\\u{7}b");
/// assert!(common::error::echo(&"x".repeat(1000)).ends_with("… (1000 bytes in all)"));
/// ```
pub fn echo(text: &str) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == ECHO_MAX {
            out += &format!("… ({} bytes in all)", text.len());
            break;
        }
        // Format characters (bidirectional overrides, zero-width spaces) hide or reorder
        // text on a terminal as control characters do.
        let invisible =
            matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}');
        if c.is_control() || invisible {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A path as an error or a log line may repeat it (see [`echo`]).
pub fn echo_path(path: &std::path::Path) -> String {
    echo(&path.display().to_string())
}

/// An OS error as a short lower-case phrase: "address already in use", not
/// "Address already in use (os error 98)".
pub fn describe(err: &std::io::Error) -> String {
    let text = err.to_string();
    let text = match text.find(" (os error") {
        Some(end) => &text[..end],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_who_can_fix_it() {
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
        assert_eq!(Error::Runtime("x".into()).exit_code(), 1);
    }

    #[test]
    fn nobody_listening_is_recognised_however_the_os_says_it() {
        use std::io::{Error as IoError, ErrorKind};
        for err in [
            IoError::from(ErrorKind::ConnectionRefused), // Linux, macOS: connected sockets only
            IoError::from(ErrorKind::ConnectionReset),   // Windows, as std maps 10054
            IoError::from_raw_os_error(WSAECONNRESET),   // Windows, raw
            IoError::from_raw_os_error(WSAENETRESET),    // Windows, an ICMP time exceeded
        ] {
            assert!(is_port_unreachable(&err), "{err:?}");
        }
        assert!(!is_port_unreachable(&IoError::from(ErrorKind::TimedOut)));
        assert!(!is_port_unreachable(&IoError::from(ErrorKind::WouldBlock)));
    }

    #[test]
    #[cfg(unix)]
    fn message_too_long_is_the_platforms_emsgsize() {
        let err = std::io::Error::from_raw_os_error(nix::libc::EMSGSIZE);
        assert!(is_message_too_long(&err));
        assert!(!is_message_too_long(&std::io::Error::from_raw_os_error(
            nix::libc::EACCES
        )));
    }

    /// "message too long", "address family not supported", a full disk (/dev/full) and
    /// too many open files had no hint; EMFILE on a file the user named exited 2 (usage).
    #[test]
    #[cfg(unix)]
    fn os_errors_a_learner_meets_say_what_to_try() {
        use nix::libc;
        let io = |code| std::io::Error::from_raw_os_error(code);
        let text = |code| Error::io("cannot send", &io(code)).to_string();
        assert!(
            text(libc::EMSGSIZE)
                .ends_with("(one UDP datagram carries at most 65507 bytes over IPv4, 65527 over IPv6; send less)")
        );
        assert!(text(libc::EAFNOSUPPORT).contains("an IPv4 socket cannot reach an IPv6 address"));
        assert!(
            text(libc::ENOSPC).ends_with("no space left on device (the disk is full: free space or write elsewhere)")
        );
        assert!(text(libc::EMFILE).contains("ulimit -n"));
        assert_eq!(Error::path("cannot read x", &io(libc::EMFILE)).exit_code(), 1);
        assert_eq!(Error::path("cannot read x", &io(libc::ENOSPC)).exit_code(), 1);
        assert_eq!(Error::path("cannot read x", &io(libc::ENOENT)).exit_code(), 2);
        assert_eq!(Error::path("cannot read x", &io(libc::EACCES)).exit_code(), 2);
        assert_eq!(Error::path("cannot read x", &io(libc::EISDIR)).exit_code(), 2);
        let v6 = bind_error(
            "[2001:db8::1]:9".parse().unwrap(),
            &std::io::ErrorKind::AddrNotAvailable.into(),
        );
        assert!(v6.to_string().ends_with("try [::1] or [::])"), "{v6}");
    }

    #[test]
    fn echoed_input_is_escaped_and_cut() {
        assert_eq!(echo("PING\0=>\u{1b}[2J"), "PING\\u{0}=>\\u{1b}[2J");
        assert_eq!(echo("\u{202e}txt"), "\\u{202e}txt");
        assert_eq!(echo("温度=>OK"), "温度=>OK");
        let long = echo(&"/(.*)/=>".repeat(250_000));
        assert!(long.chars().count() < ECHO_MAX + 40, "{long}");
        assert!(long.ends_with("… (2000000 bytes in all)"), "{long}");
    }

    #[test]
    #[cfg(unix)]
    fn os_errors_read_as_a_phrase() {
        let err = std::io::Error::from_raw_os_error(nix::libc::EADDRINUSE);
        assert_eq!(describe(&err), "address already in use");
        let err = Error::io("cannot bind 127.0.0.1:8888", &err);
        assert_eq!(err.to_string(), "cannot bind 127.0.0.1:8888: address already in use");
    }
}
