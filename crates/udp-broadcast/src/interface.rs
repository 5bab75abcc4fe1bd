//! `--interface`: which network interface multicast uses.

use std::net::Ipv4Addr;

use common::{Error, Result};

/// The IPv4 address that names an interface for IPv4 multicast (`IP_MULTICAST_IF` and the
/// group join take an address, not a name); `lo` is accepted for 127.0.0.1.
pub(crate) fn ipv4(text: &str) -> Result<Ipv4Addr> {
    if text == "lo" {
        return Ok(Ipv4Addr::LOCALHOST);
    }
    text.parse().map_err(|_| {
        Error::Usage(format!(
            "bad --interface '{}': for IPv4 multicast give the interface's IPv4 address (e.g. 192.168.1.10), or lo",
            shown(text)
        ))
    })
}

/// The index that names an interface for IPv6 multicast: a number, or a name the OS looks
/// up (`if_nametoindex`, as Python's `socket.if_nametoindex`; Unix).
pub(crate) fn ipv6_index(text: &str) -> Result<u32> {
    if let Ok(index) = text.parse::<u32>() {
        return Ok(index);
    }
    let unknown = || {
        Error::Usage(format!(
            "bad --interface '{}': no such network interface (see `ip link`)",
            shown(text)
        ))
    };
    #[cfg(unix)]
    {
        nix::net::if_::if_nametoindex(text).map_err(|_| unknown())
    }
    #[cfg(not(unix))]
    {
        Err(unknown())
    }
}

/// What was typed, escaped for the one-line error: a control code in an argument (from a
/// script, a pasted name) must not reach the terminal either.
fn shown(text: &str) -> String {
    common::codec::Encoding::Utf8.render(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_by_address_name_or_index() {
        assert_eq!(ipv4("lo").unwrap(), Ipv4Addr::LOCALHOST);
        assert_eq!(ipv4("10.0.0.2").unwrap(), Ipv4Addr::new(10, 0, 0, 2));
        assert!(
            ipv4("eth0")
                .unwrap_err()
                .to_string()
                .contains("give the interface's IPv4 address")
        );
        assert_eq!(
            ipv4("\x1b]0;x\x07").unwrap_err().to_string(),
            "bad --interface '\\x1b]0;x\\x07': for IPv4 multicast give the interface's IPv4 address (e.g. 192.168.1.10), or lo"
        );
        assert_eq!(ipv6_index("7").unwrap(), 7);
        #[cfg(target_os = "linux")]
        assert_eq!(ipv6_index("lo").unwrap(), 1);
        assert!(ipv6_index("../etc").is_err());
        assert!(
            ipv6_index("no-such-if0")
                .unwrap_err()
                .to_string()
                .contains("no such network interface")
        );
    }
}
