//! The 8-byte UDP header (RFC 768), rebuilt for a received datagram.
//!
//! The chapter says UDP's header is 8 bytes where TCP's is 20. Those 8 bytes are four
//! 16-bit fields, and that is all UDP adds to IP:
//!
//! ```text
//!  0      7 8     15 16    23 24    31
//! +--------+--------+--------+--------+
//! |   source port   |    dest port    |
//! +--------+--------+--------+--------+
//! |     length      |    checksum     |
//! +--------+--------+--------+--------+
//! |          data octets ...
//! ```
//!
//! The socket API hides the header (`recvfrom` returns the data and the sender), so
//! `--show-header` rebuilds it: the ports come from the sender and the socket, the length
//! is the payload plus 8, and the checksum is computed as RFC 768 says, over a
//! "pseudo-header" of IP addresses and protocol number 17 followed by the header and data.
//! It is what a correct sender puts on the wire; capture tools show the same value unless
//! the sender's network card fills it in later (checksum offload, as on `lo`).

use std::net::{IpAddr, SocketAddr};

use serde_json::{Value, json};

/// UDP's number in the IP header's protocol field (IPv6: next header).
pub const IP_PROTOCOL_UDP: u8 = 17;

/// The UDP header's size: four 16-bit fields. TCP's header is at least 20 bytes.
pub const UDP_HEADER_LEN: usize = 8;

/// The four fields of a UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpHeader {
    /// The sender's port.
    pub src_port: u16,
    /// The receiver's port.
    pub dst_port: u16,
    /// Header plus payload, in bytes: payload + 8.
    pub length: u16,
    /// RFC 768 one's complement checksum over pseudo-header, header and payload.
    pub checksum: u16,
}

impl UdpHeader {
    /// The header of `payload` sent from `src` to `dst`; `None` when the addresses are of
    /// different families or the payload cannot fit a UDP datagram.
    pub fn new(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Option<UdpHeader> {
        let length = u16::try_from(payload.len() + UDP_HEADER_LEN).ok()?;
        let checksum = checksum(src, dst, payload)?;
        Some(UdpHeader {
            src_port: src.port(),
            dst_port: dst.port(),
            length,
            checksum,
        })
    }

    /// The header of `payload`, received from `peer` on a socket bound to `local`, sent to
    /// `to` (from [`crate::dest`]; without it, `local`'s address). `None` when the
    /// destination is unknown (bound to `0.0.0.0` and the kernel did not say).
    #[cfg(feature = "receive")]
    pub fn received(
        peer: SocketAddr,
        to: Option<crate::dest::Destination>,
        local: SocketAddr,
        payload: &[u8],
    ) -> Option<UdpHeader> {
        let dst_ip = to.map_or(local.ip(), |d| d.addr);
        if dst_ip.is_unspecified() {
            return None;
        }
        UdpHeader::new(peer, SocketAddr::new(dst_ip, local.port()), payload)
    }

    /// The header as the 8 bytes on the wire (network byte order).
    pub fn to_bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        b[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        b[4..6].copy_from_slice(&self.length.to_be_bytes());
        b[6..8].copy_from_slice(&self.checksum.to_be_bytes());
        b
    }

    /// `{"src_port","dst_port","length","checksum"}`, the checksum as `"0x1a2b"`.
    pub fn to_json(&self) -> Value {
        json!({
            "src_port": self.src_port, "dst_port": self.dst_port, "length": self.length,
            "checksum": format!("{:#06x}", self.checksum), "ip_protocol": IP_PROTOCOL_UDP,
        })
    }

    /// `udp src 54321 dst 8888 len 13 sum 0x1a2b proto 17`.
    pub fn to_text(&self) -> String {
        format!(
            "udp src {} dst {} len {} sum {:#06x} proto {IP_PROTOCOL_UDP}",
            self.src_port, self.dst_port, self.length, self.checksum
        )
    }
}

/// The RFC 768 checksum of a datagram from `src` to `dst` carrying `payload` (RFC 8200 §8.1
/// for IPv6); `None` when the address families differ or the payload is too long.
///
/// A computed 0 is sent as 0xFFFF, because 0 on the wire means "no checksum" (IPv4 only).
pub fn checksum(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Option<u16> {
    let length = u16::try_from(payload.len() + UDP_HEADER_LEN).ok()?;
    let mut sum = Sum::default();
    match (unmapped(src.ip()), unmapped(dst.ip())) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            // Pseudo-header: source, destination, zero, protocol, UDP length.
            sum.add(&s.octets());
            sum.add(&d.octets());
            sum.add(&[0, IP_PROTOCOL_UDP]);
            sum.add(&length.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            // Pseudo-header: source, destination, 32-bit length, 3 zeros, next header.
            sum.add(&s.octets());
            sum.add(&d.octets());
            sum.add(&u32::from(length).to_be_bytes());
            sum.add(&[0, 0, 0, IP_PROTOCOL_UDP]);
        }
        _ => return None,
    }
    // The header itself, with the checksum field as zero, then the data.
    sum.add(&src.port().to_be_bytes());
    sum.add(&dst.port().to_be_bytes());
    sum.add(&length.to_be_bytes());
    sum.add(&[0, 0]);
    sum.add(payload);
    Some(match sum.finish() {
        0 => 0xffff,
        c => c,
    })
}

/// A v4-mapped IPv6 address (`::ffff:127.0.0.1`, as a dual-stack socket reports an IPv4
/// sender) is IPv4 on the wire.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The Internet checksum (RFC 1071): add 16-bit big-endian words, fold the carries back in,
/// complement. Every part added here has an even length except possibly the payload, which
/// comes last, so an odd byte is padded with a zero as the RFC says.
#[derive(Default)]
struct Sum(u64);

impl Sum {
    fn add(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(2);
        for w in &mut words {
            self.0 += u64::from(u16::from_be_bytes([w[0], w[1]]));
        }
        if let [last] = words.remainder() {
            self.0 += u64::from(u16::from_be_bytes([*last, 0]));
        }
    }

    fn finish(self) -> u16 {
        let mut s = self.0;
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Worked by hand, word by word, for "hello" from 127.0.0.1:54321 to 127.0.0.1:8888:
    ///
    /// ```text
    /// pseudo-header  7f00 0001 | 7f00 0001 | 0011 | 000d
    /// header         d431 (54321) | 22b8 (8888) | 000d (13) | 0000
    /// data           6865 ("he") | 6c6c ("ll") | 6f00 ("o" + pad)
    /// running sum    fe20 after the pseudo-header, 1_f516 after the header,
    ///                3_38e7 after the data
    /// fold           38e7 + 3 = 38ea
    /// complement     ~38ea = c715
    /// ```
    #[test]
    fn hand_worked_ipv4_example() {
        let h = UdpHeader::new(addr("127.0.0.1:54321"), addr("127.0.0.1:8888"), b"hello").unwrap();
        assert_eq!(h.length, 13);
        assert_eq!(h.checksum, 0xc715);
        assert_eq!(h.to_bytes(), [0xd4, 0x31, 0x22, 0xb8, 0x00, 0x0d, 0xc7, 0x15]);
    }

    /// A datagram checks out when the sum over pseudo-header, header (checksum included)
    /// and data is all ones: the receiver's test in RFC 768.
    #[test]
    fn a_receiver_verifies_to_all_ones() {
        for (src, dst, data) in [
            ("10.0.0.1:1234", "10.0.0.2:80", &b"odd"[..]),
            ("[2001:db8::1]:5000", "[ff02::1]:7788", b"even"),
            ("192.168.1.10:65535", "192.168.1.255:9", b""),
        ] {
            let (src, dst) = (addr(src), addr(dst));
            let h = UdpHeader::new(src, dst, data).unwrap();
            let mut sum = Sum::default();
            match (src.ip(), dst.ip()) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    sum.add(&s.octets());
                    sum.add(&d.octets());
                    sum.add(&[0, 17]);
                    sum.add(&h.length.to_be_bytes());
                }
                (IpAddr::V6(s), IpAddr::V6(d)) => {
                    sum.add(&s.octets());
                    sum.add(&d.octets());
                    sum.add(&u32::from(h.length).to_be_bytes());
                    sum.add(&[0, 0, 0, 17]);
                }
                _ => unreachable!(),
            }
            sum.add(&h.to_bytes());
            sum.add(data);
            assert_eq!(sum.finish(), 0, "{src} → {dst}");
        }
    }

    /// RFC 1071 §3's example: the words 0001 f203 f4f5 f6f7 sum to 0x2_20d0 → ddf2 after the
    /// fold, whose complement is 220d.
    #[test]
    fn rfc_1071_example() {
        let mut s = Sum::default();
        s.add(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
        assert_eq!(s.finish(), !0xddf2);
    }

    #[test]
    fn zero_is_sent_as_all_ones_and_mixed_families_have_no_checksum() {
        // Find a payload whose checksum computes to zero: fix its last word so the sum is ffff.
        let (src, dst) = (addr("10.0.0.1:1000"), addr("10.0.0.2:2000"));
        let base = checksum(src, dst, &[0, 0]).unwrap();
        let fix = base.to_be_bytes();
        assert_eq!(checksum(src, dst, &fix), Some(0xffff));
        assert_eq!(checksum(src, addr("[::1]:1"), b"x"), None);
        let mapped = addr("[::ffff:127.0.0.1]:54321");
        assert_eq!(checksum(mapped, addr("127.0.0.1:8888"), b"hello"), Some(0xc715));
    }
}
