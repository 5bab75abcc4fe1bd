//! Addresses as people type them: `IP:PORT`, `[IPv6]:PORT`, `HOST:PORT`, or a bare `PORT`.
//!
//! A bare port means `127.0.0.1:PORT`, because every program here is local by default:
//! nothing leaves this machine unless an address says so.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use crate::{Error, Result};

/// The address a bare `PORT` stands for.
pub const DEFAULT_IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Parses and resolves an address; see [`resolve`] for the order when a name has several.
///
/// # Errors
/// [`Error::Usage`] naming the value when it is not an address or the name does not resolve.
///
/// # Examples
/// ```
/// use common::addr::parse;
/// assert_eq!(parse("8888").unwrap().to_string(), "127.0.0.1:8888");
/// assert_eq!(parse("[::1]:53").unwrap().to_string(), "[::1]:53");
/// assert_eq!(parse("localhost:7").unwrap().to_string(), "127.0.0.1:7");
/// assert!(parse("no-port").is_err());
/// ```
pub fn parse(text: &str) -> Result<SocketAddr> {
    resolve(text)?
        .into_iter()
        .next()
        .ok_or_else(|| bad(text, "the name resolves to no address"))
}

/// Every address `text` stands for, IPv4 first.
///
/// IPv4 comes first because the servers here (and the chapter's) bind `127.0.0.1`:
/// on hosts where `localhost` resolves to `::1` first, taking the resolver's order would
/// send to a port nobody listens on.
///
/// # Errors
/// [`Error::Usage`] naming the value when it is not an address or the name does not resolve.
pub fn resolve(text: &str) -> Result<Vec<SocketAddr>> {
    let text = text.trim();
    if let Ok(port) = text.parse::<u16>() {
        return Ok(vec![SocketAddr::new(DEFAULT_IP, port)]);
    }
    if text.chars().all(|c| c.is_ascii_digit()) && !text.is_empty() {
        return Err(bad(text, "a port is a number from 0 to 65535"));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(vec![check_scope(text, addr)?]);
    }
    if let Some(why) = scope_mistake(text) {
        return Err(bad(text, &why));
    }
    if text.starts_with('[') && text.ends_with(']') {
        return Err(bad(text, &format!("no port: write {text}:8888")));
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(bad(text, "expected IP:PORT, [IPv6]:PORT, HOST:PORT or PORT"));
    };
    let port: u16 = port
        .parse()
        .map_err(|_| bad(text, "a port is a number from 0 to 65535"))?;
    if host.is_empty() || host.contains(':') || host.starts_with('[') {
        return Err(bad(text, "expected IP:PORT, [IPv6]:PORT, HOST:PORT or PORT"));
    }
    // Only a well-formed host name goes to the resolver (which may ask a DNS server).
    if !is_host_name(host) {
        return Err(bad(text, &format!("'{host}' is not a host name")));
    }
    let mut addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| {
            bad(
                text,
                &format!("cannot resolve '{host}': {}", crate::error::describe(&e)),
            )
        })?
        .collect();
    ipv4_first(&mut addrs);
    if addrs.is_empty() {
        return Err(bad(text, "the name resolves to no address"));
    }
    Ok(addrs)
}

/// An address as people should read it: an IPv4 peer of a dual-stack (`[::]`) socket
/// arrives as `[::ffff:127.0.0.1]:5000`, and is shown as the `127.0.0.1:5000` it is.
/// (Replies still go to the address as received: the socket is IPv6.)
///
/// # Examples
/// ```
/// let mapped = "[::ffff:127.0.0.1]:5000".parse().unwrap();
/// assert_eq!(common::addr::unmapped(mapped).to_string(), "127.0.0.1:5000");
/// let v6 = "[::1]:5000".parse().unwrap();
/// assert_eq!(common::addr::unmapped(v6), v6);
/// ```
pub fn unmapped(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

/// An IPv6 scope (`%2` in `[fe80::1%2]:8888`) names the interface of a link-local address;
/// on any other address the OS ignores it, so it is refused rather than dropped silently.
fn check_scope(text: &str, addr: SocketAddr) -> Result<SocketAddr> {
    if let SocketAddr::V6(v6) = addr {
        let link_local = (v6.ip().segments()[0] & 0xffc0) == 0xfe80;
        if v6.scope_id() != 0 && !link_local {
            return Err(bad(
                text,
                &format!(
                    "a scope (%{}) only applies to link-local addresses (fe80::…); write [{}]:{}",
                    v6.scope_id(),
                    v6.ip(),
                    v6.port()
                ),
            ));
        }
    }
    Ok(addr)
}

/// `[fe80::1%eth0]:8888`: std reads only a numeric scope; say so instead of "bad address".
fn scope_mistake(text: &str) -> Option<String> {
    let inner = text.strip_prefix('[')?;
    let (ip, rest) = inner.split_once('%')?;
    ip.parse::<std::net::Ipv6Addr>().ok()?;
    let (scope, _) = rest.split_once(']').unwrap_or((rest, ""));
    if scope.is_empty() || scope.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(format!(
        "'%{}' is an interface name: write the interface's number instead (`ip link` or `ipconfig` shows it, e.g. [{ip}%2]:8888)",
        crate::error::echo(scope)
    ))
}

/// Puts IPv4 addresses before IPv6 ones; a stable sort keeps the resolver's order within
/// each family.
fn ipv4_first(addrs: &mut [SocketAddr]) {
    addrs.sort_by_key(SocketAddr::is_ipv6);
}

/// Letters, digits, dots, hyphens and underscores: what a host name may hold.
fn is_host_name(host: &str) -> bool {
    host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Whether `text` is written like an address (not whether it is a valid one).
///
/// The client uses it to tell `udp-client 127.0.0.1:9000 hi` from `udp-client hi`: a first
/// word that looks like an address is the target, and a wrong one is an error rather than
/// a message sent to the default target by mistake.
pub fn looks_like(text: &str) -> bool {
    let is_digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if is_digits(text) || text.starts_with('[') {
        return true;
    }
    match text.rsplit_once(':') {
        Some((host, port)) => {
            is_digits(port)
                && !host.is_empty()
                && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        }
        None => false,
    }
}

/// The client's target from its first words, the way `nc -u HOST PORT` and the chapter's
/// `chapter_client.py HOST PORT MSG` take it: `IP:PORT` (and the other forms of [`parse`])
/// in one word, or a host and a port in two (`127.0.0.1 9006`, `::1 9005`, `localhost 9005`,
/// `esp32.local 8266`).
/// Returns the address and how many words it took, or `None` when the first word is no
/// address at all (then every word is the message).
///
/// # Errors
/// [`Error::Usage`] for a first word that is an address without a usable port
/// (`127.0.0.1`, `::1:9005`, `localhost`, `127.0.0.1:`): it must never become the start of a
/// message silently sent to the default target. The error shows the right spelling.
///
/// # Examples
/// ```
/// use common::addr::target_words;
/// assert_eq!(target_words("9000", Some("hi")).unwrap(), Some(("127.0.0.1:9000".parse().unwrap(), 1)));
/// assert_eq!(target_words("127.0.0.1", Some("9006")).unwrap(), Some(("127.0.0.1:9006".parse().unwrap(), 2)));
/// assert_eq!(target_words("hello", Some("world")).unwrap(), None);
/// assert!(target_words("::1:9005", Some("hi")).unwrap_err().to_string().contains("[::1]:9005"));
/// ```
pub fn target_words(first: &str, second: Option<&str>) -> Result<Option<(SocketAddr, usize)>> {
    // `[::1]`: an IPv6 address in the brackets a port would follow, the same as `::1`.
    let bracketed = first.strip_prefix('[').and_then(|r| r.strip_suffix(']'));
    if let Some(ip) = bracketed.and_then(|inner| inner.parse::<std::net::Ipv6Addr>().ok()) {
        return match second.and_then(|p| p.parse::<u16>().ok()) {
            Some(port) => Ok(Some((SocketAddr::new(ip.into(), port), 2))),
            None => Err(without_port(first, &format!("{first}:8888"))),
        };
    }
    if looks_like(first) {
        return Ok(Some((parse(first)?, 1)));
    }
    let host = first.strip_suffix(':');
    let ip = host.unwrap_or(first).parse::<IpAddr>().ok();
    let named = host.unwrap_or(first).eq_ignore_ascii_case("localhost");
    let port = second.and_then(|p| p.parse::<u16>().ok());
    // A dotted name (esp32.local, example.com) is a host when a port follows it; alone it
    // may be the start of a message ("v1.2 is out"), so it is one.
    let dotted =
        host.is_none() && first.contains('.') && first.chars().any(|c| c.is_ascii_alphabetic()) && is_host_name(first);
    if host.is_none() && ip.is_none() && !named && !(dotted && port.is_some()) {
        return Ok(None);
    }
    match (host, ip, port) {
        (None, Some(ip), Some(port)) => return Ok(Some((SocketAddr::new(ip, port), 2))),
        (None, None, Some(port)) => return Ok(Some((parse(&format!("{first}:{port}"))?, 2))),
        _ => {}
    }
    let spelled = match ip {
        Some(IpAddr::V6(_)) => ipv6_with_port(first).unwrap_or_else(|| format!("[{}]:8888", host.unwrap_or(first))),
        _ => format!("{}:8888", host.unwrap_or(first)),
    };
    Err(without_port(first, &spelled))
}

/// The one-line error for an address typed without its port, with the spelling that works.
fn without_port(first: &str, spelled: &str) -> Error {
    Error::Usage(format!(
        "'{first}' is an address without a port: write {spelled} (or HOST PORT as two words); to send a message that starts with it, quote the message or put it after --"
    ))
}

/// `::1:9005` is a valid IPv6 address, but what was meant is `[::1]:9005`: the last group,
/// if it is a decimal port, moved outside brackets.
fn ipv6_with_port(text: &str) -> Option<String> {
    let (addr, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    addr.parse::<std::net::Ipv6Addr>().ok()?;
    Some(format!("[{addr}]:{port}"))
}

fn bad(text: &str, why: &str) -> Error {
    Error::Usage(format!(
        "bad address '{}': {why} (e.g. 127.0.0.1:8888, [::1]:8888, localhost:8888 or 8888)",
        crate::error::echo(text)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_written_form() {
        assert_eq!(parse("9000").unwrap(), "127.0.0.1:9000".parse().unwrap());
        assert_eq!(parse("0").unwrap(), "127.0.0.1:0".parse().unwrap());
        assert_eq!(parse("10.1.2.3:53").unwrap(), "10.1.2.3:53".parse().unwrap());
        assert_eq!(parse("[::1]:8888").unwrap(), "[::1]:8888".parse().unwrap());
        assert_eq!(parse(" 0.0.0.0:8888 ").unwrap(), "0.0.0.0:8888".parse().unwrap());
    }

    #[test]
    fn localhost_resolves_to_ipv4_first() {
        let addrs = resolve("localhost:8888").unwrap();
        assert_eq!(addrs[0], "127.0.0.1:8888".parse().unwrap());
    }

    #[test]
    fn a_resolver_that_lists_ipv6_first_still_gives_ipv4_first() {
        let mut addrs: Vec<SocketAddr> = ["[::1]:8888", "127.0.0.1:8888", "[fe80::1]:8888", "10.0.0.1:8888"]
            .map(|a| a.parse().unwrap())
            .to_vec();
        ipv4_first(&mut addrs);
        let order: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        assert_eq!(
            order,
            ["127.0.0.1:8888", "10.0.0.1:8888", "[::1]:8888", "[fe80::1]:8888"]
        );
    }

    #[test]
    fn rejects_what_is_not_an_address_naming_the_value() {
        for text in [
            "",
            "hello",
            "1.2.3.4",
            "1.2.3.4:70000",
            "70000",
            ":80",
            "[::1]",
            "::1:80",
            "a b:1",
        ] {
            let err = parse(text).unwrap_err();
            assert!(matches!(err, Error::Usage(_)), "{text}: {err:?}");
            assert!(err.to_string().contains(&format!("'{}'", text.trim())), "{err}");
        }
    }

    /// `[::1%999]:0` was bound as `[::1]:0`, the scope dropped silently; `%lo` was a
    /// generic "bad address".
    #[test]
    fn ipv6_scopes_are_kept_for_link_local_and_refused_elsewhere() {
        let err = parse("[::1%999]:0").unwrap_err().to_string();
        assert!(
            err.contains("a scope (%999) only applies to link-local addresses (fe80::…); write [::1]:0"),
            "{err}"
        );
        assert_eq!(parse("[fe80::1%2]:8888").unwrap(), "[fe80::1%2]:8888".parse().unwrap());
        let err = parse("[::1%lo]:0").unwrap_err().to_string();
        assert!(
            err.contains("'%lo' is an interface name: write the interface's number instead"),
            "{err}"
        );
        let err = parse("[fe80::1%eth0]").unwrap_err().to_string();
        assert!(err.contains("'%eth0' is an interface name"), "{err}");
        let err = parse("[::1]").unwrap_err().to_string();
        assert!(err.contains("no port: write [::1]:8888"), "{err}");
        // As the client's first word, `[::1]` gets the same one-line error as `::1`, and
        // `[::1] 9000` is HOST PORT as two words.
        let words = |a: &str, b: Option<&str>| target_words(a, b).map_err(|e| e.to_string());
        let plain = words("::1", Some("hi")).unwrap_err();
        let bracketed = words("[::1]", Some("hi")).unwrap_err();
        assert_eq!(bracketed, plain.replacen("'::1'", "'[::1]'", 1));
        assert_eq!(
            words("[::1]", Some("9000")),
            Ok(Some(("[::1]:9000".parse().unwrap(), 2)))
        );
    }

    #[test]
    fn junk_never_reaches_the_resolver() {
        // Tests never resolve a real name (a DNS server may be off this machine); what is
        // not a host name is refused before any look-up.
        for text in ["a b:1", "host/x:80", "tab\there:80", "ä.example:80", "x\0y:80"] {
            let err = parse(text).unwrap_err();
            assert!(err.to_string().contains("is not a host name"), "{text}: {err}");
        }
    }

    #[test]
    fn tells_addresses_from_messages() {
        for text in [
            "8888",
            "127.0.0.1:80",
            "[::1]:80",
            "localhost:80",
            "1.2.3.4:70000",
            "70000",
        ] {
            assert!(looks_like(text), "{text}");
        }
        for text in ["hello", "hello world", "a:b", "时间:12", "-1", "", "12:"] {
            assert!(!looks_like(text), "{text}");
        }
    }

    #[test]
    fn host_and_port_may_be_two_words_and_an_address_alone_is_an_error() {
        let two = |a: &str, b: &str| target_words(a, Some(b)).unwrap().unwrap();
        assert_eq!(two("127.0.0.1", "9006"), ("127.0.0.1:9006".parse().unwrap(), 2));
        assert_eq!(two("::1", "9005"), ("[::1]:9005".parse().unwrap(), 2));
        assert_eq!(two("localhost", "9005"), ("127.0.0.1:9005".parse().unwrap(), 2));
        assert_eq!(two("127.0.0.1:9000", "hi"), ("127.0.0.1:9000".parse().unwrap(), 1));
        assert_eq!(target_words("hello", Some("9000")).unwrap(), None);
        // A dotted word alone is a message; with a port after it, a host (not resolved here).
        assert_eq!(target_words("v1.2", Some("is")).unwrap(), None);
        assert_eq!(target_words("esp32.local", None).unwrap(), None);
        assert_eq!(target_words("hello", None).unwrap(), None);
        for (first, second, spelled) in [
            ("::1:9005", Some("hi"), "[::1]:9005"),
            ("localhost", Some("hi"), "localhost:8888"),
            ("127.0.0.1", Some("hi"), "127.0.0.1:8888"),
            ("127.0.0.1", None, "127.0.0.1:8888"),
            ("127.0.0.1:", Some("hi"), "127.0.0.1:8888"),
            ("127.0.0.1:", Some("9006"), "127.0.0.1:8888"),
            ("::1", Some("hi"), "[::1]:8888"),
        ] {
            let err = target_words(first, second).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            let text = err.to_string();
            assert!(
                text.contains(&format!("write {spelled} ")),
                "{first} {second:?}: {text}"
            );
            assert!(text.contains("after --"), "{text}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
        /// The fuzz target's properties, bounded for CI: random address-like texts never
        /// panic, and whatever std reads as an address is read the same. Texts that would
        /// go to the resolver are skipped: a test must not make DNS queries.
        #[test]
        fn random_address_like_text_never_panics(text in "[0-9.:\\[\\]%fe:ab /x时-]{0,19}") {
            let _ = looks_like(&text);
            let _ = crate::duration::parse(&text);
            if let Ok(std_addr) = text.parse::<SocketAddr>() {
                // A scope on an address that is not link-local is refused (check_scope).
                match check_scope(&text, std_addr) {
                    Ok(_) => proptest::prop_assert_eq!(parse(&text).unwrap(), std_addr, "{:?}", text),
                    Err(_) => proptest::prop_assert_eq!(parse(&text).unwrap_err().exit_code(), 2),
                }
            } else if text.parse::<u16>().is_ok() || !text.contains(':') {
                let _ = parse(&text);
            }
        }
    }
}
