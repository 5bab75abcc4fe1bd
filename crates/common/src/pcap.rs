//! What crossed the wire, as a pcap file that Wireshark and `tshark -r FILE` read (`--pcap`),
//! and the UDP datagrams of a capture read back (for `--replay`).
//!
//! A socket program never sees the IP and UDP headers: `recvfrom` returns the data and the
//! sender, and `sendto` takes the data and the destination. A capture tool (tcpdump,
//! Wireshark) needs root to see them on an interface. This module writes each datagram the
//! program sent or received from user space, without root, with the headers rebuilt from
//! what the socket knows: the real addresses and ports, the IP and UDP lengths, the IPv4
//! header checksum and the UDP checksum of RFC 768 (the one `--show-header` prints). The
//! 8 bytes the chapter talks about are then there to click on in Wireshark.
//!
//! ```sh
//! udp-broadcast listen --pcap heard.pcap            # terminal 1
//! udp-broadcast send --count 3                      # terminal 2
//! tshark -r heard.pcap -o udp.check_checksum:TRUE   # 3 packets, checksums [correct]
//! ```
//!
//! The file is a classic pcap (link type RAW: each record starts with the IPv4 or IPv6
//! header, both may be in one file), microsecond timestamps, flushed after every record so
//! a killed program leaves a readable file up to its last datagram.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use etherparse::{IpNumber, Ipv4Header, Ipv6Header, LaxNetSlice, LaxSlicedPacket, TransportSlice};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader};
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, TsResolution};

use crate::header::{UDP_HEADER_LEN, checksum};
use crate::{Error, MAX_UDP_PAYLOAD_V4, MAX_UDP_PAYLOAD_V6, Result};

/// The largest record kept: an IPv6 header (40 bytes) and the largest UDP datagram it can
/// carry (65 535). tcpdump's default snapshot length, 262 144, is larger still.
pub const SNAPLEN: u32 = 262_144;

/// The time to live (IPv4) and hop limit (IPv6) written in the rebuilt IP headers: the
/// common default of Linux, macOS and Windows. The socket does not say the real one.
const TTL: u8 = 64;

/// One datagram to record: who sent it to whom, the bytes kept, and how long it really was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The sender (this program's socket for a datagram it sent).
    pub src: SocketAddr,
    /// The receiver (this program's socket for a datagram it received).
    pub dst: SocketAddr,
    /// The payload bytes kept (cut to the receive buffer when the datagram was longer).
    pub data: &'a [u8],
    /// The payload's real length in bytes: `data.len()` unless the datagram was cut.
    pub len: usize,
    /// When it was sent or received.
    pub time: SystemTime,
}

impl<'a> Packet<'a> {
    /// A whole datagram from `src` to `dst`, sent or received now.
    pub fn new(src: SocketAddr, dst: SocketAddr, data: &'a [u8]) -> Self {
        Packet {
            src,
            dst,
            data,
            len: data.len(),
            time: SystemTime::now(),
        }
    }

    /// A datagram the receive buffer cut. `len` is its real length when the OS said it;
    /// std's `recv_from`, like Python's `recvfrom`, drops the rest silently and does not,
    /// so a caller that only knows "it was longer" passes `data.len() + 1`: the record then
    /// says "cut" (captured length < length) without inventing bytes.
    pub fn cut(self, len: usize) -> Self {
        Packet {
            len: len.max(self.data.len()),
            ..self
        }
    }
}

/// A pcap file being written, one record per datagram.
///
/// # Example
/// ```
/// # fn main() -> common::Result<()> {
/// use std::net::UdpSocket;
/// use common::pcap::{Packet, Writer};
///
/// let path = std::env::temp_dir().join(format!("doc-{}.pcap", std::process::id()));
/// let mut pcap = Writer::create(&path)?;
/// let server = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let client = UdpSocket::bind("127.0.0.1:0").unwrap();
/// client.send_to(b"hello", server.local_addr().unwrap()).unwrap();
/// let mut buf = [0u8; 1024];
/// let (n, peer) = server.recv_from(&mut buf).unwrap();
/// pcap.record(&Packet::new(peer, server.local_addr().unwrap(), &buf[..n]));
/// let captured = common::pcap::read_udp(&path)?;
/// assert_eq!(captured[0].data, b"hello");
/// # std::fs::remove_file(&path).ok();
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Writer {
    path: PathBuf,
    /// `None` once a write failed: the failure is logged once, the program goes on.
    file: Option<BufWriter<File>>,
    records: u64,
    /// The file's length after the last whole record, where a failed write is cut back to.
    whole: u64,
}

impl Writer {
    /// Creates (or empties) `path` and writes the pcap file header.
    ///
    /// # Errors
    /// [`Error::Runtime`] naming the file when it cannot be created or written.
    pub fn create(path: &Path) -> Result<Writer> {
        let cannot = |e: &io::Error| Error::io(format!("cannot write the pcap file {}", path.display()), e);
        let file = File::create(path).map_err(|e| cannot(&e))?;
        let header = PcapHeader {
            snaplen: SNAPLEN,
            datalink: DataLink::RAW,
            ts_resolution: TsResolution::MicroSecond,
            endianness: pcap_file::Endianness::native(), // as the records below
            ..PcapHeader::default()
        };
        let mut file = BufWriter::new(file);
        let whole = header.write_to(&mut file).map_err(|e| cannot(&to_io(e)))?;
        file.flush().map_err(|e| cannot(&e))?;
        Ok(Writer {
            path: path.to_path_buf(),
            file: Some(file),
            records: 0,
            whole: whole as u64,
        })
    }

    /// Appends one record and flushes it to the file. A failed write (disk full, file
    /// removed from a USB stick) is logged once; pcap writing stops, the program goes on.
    pub fn record(&mut self, packet: &Packet<'_>) {
        let Some(file) = &mut self.file else { return };
        let frame = frame(packet);
        let written = PcapPacket::new(since_epoch(packet.time), frame.len, &frame.bytes);
        let result = written
            .write_to::<_, byteorder_slice::NativeEndian>(file, TsResolution::MicroSecond, SNAPLEN)
            .map_err(to_io)
            .and_then(|n| file.flush().map(|()| n));
        match result {
            Ok(n) => {
                self.records += 1;
                self.whole += n as u64;
            }
            Err(e) => {
                log::warn!(
                    "writing the pcap file {} failed after {}: {}; pcap writing stops, the program goes on",
                    self.path.display(),
                    crate::output::plural(self.records, "record"),
                    crate::error::describe(&e)
                );
                // Part of the record may have reached the file: cut it off, so the file
                // ends with its last whole record and every reader takes it as it is.
                if let Some(file) = self.file.take() {
                    let (file, _) = file.into_parts();
                    if let Err(e) = file.set_len(self.whole) {
                        log::debug!("cannot cut {} back to its last whole record: {e}", self.path.display());
                    }
                }
            }
        }
    }

    /// Records a datagram a socket bound to `local` received, as it came off the socket
    /// (call it from `Handler::arrived`, before the simulated network): sent to the address
    /// the OS reports (packet info: a broadcast or group address), else to `local`.
    #[cfg(feature = "receive")]
    pub fn received(&mut self, d: &crate::receive::Incoming<'_>, local: SocketAddr) {
        let to = SocketAddr::new(d.to.map_or(local.ip(), |to| to.addr), local.port());
        let packet = Packet::new(d.peer, to, d.data);
        // The receive path knows a datagram was longer than the buffer, not by how much
        // (recvfrom drops the rest): at least one byte more is what the record can say.
        self.record(&if d.truncated {
            packet.cut(d.data.len() + 1)
        } else {
            packet
        });
    }

    /// Records the reply sent to `d`'s sender, from the address `d` was sent to.
    #[cfg(feature = "receive")]
    pub fn replied(&mut self, d: &crate::receive::Incoming<'_>, local: SocketAddr, reply: &[u8]) {
        let from = SocketAddr::new(d.to.map_or(local.ip(), |to| to.addr), local.port());
        self.record(&Packet::new(from, d.peer, reply));
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// `wrote 3 datagrams to heard.pcap (tshark -r heard.pcap)`, for the log at the end.
    pub fn finish(&self) -> String {
        let path = self.path.display();
        format!(
            "wrote {} to {path} (open it in Wireshark, or: tshark -r {path})",
            crate::output::plural(self.records, "datagram")
        )
    }
}

/// The bytes of one record (IP header, UDP header, the payload kept) and the length the
/// whole packet really had.
struct Frame {
    bytes: Vec<u8>,
    len: u32,
}

/// Rebuilds the IP and UDP headers the socket API hides.
///
/// A datagram longer than one IP packet can carry (65 507 payload bytes over IPv4, 65 527
/// over IPv6) cannot be sent or received through a socket; should a caller pass one, the
/// headers say the largest length that fits and the record is marked cut there.
fn frame(packet: &Packet<'_>) -> Frame {
    let (src, dst) = same_family(packet.src.ip(), packet.dst.ip());
    let max = if src.is_ipv4() {
        MAX_UDP_PAYLOAD_V4
    } else {
        MAX_UDP_PAYLOAD_V6
    };
    let len = packet.len.min(max);
    let data = &packet.data[..packet.data.len().min(len)];
    let whole = data.len() == packet.len;
    let src = SocketAddr::new(src, packet.src.port());
    let dst = SocketAddr::new(dst, packet.dst.port());
    // RFC 768's checksum covers every payload byte, so a cut datagram's cannot be known.
    // Over IPv4, 0 means "no checksum" and Wireshark checks nothing. Over IPv6 a checksum
    // is mandatory (0 is illegal): the one over the bytes kept stands in, and Wireshark
    // does not verify the checksum of a cut packet ("unverified").
    let sum = match (whole, src.is_ipv4()) {
        (true, _) | (false, false) => checksum(src, dst, data).unwrap_or(0),
        (false, true) => 0,
    };
    // Cannot fail: `len` fits in 16 bits with the UDP header (checked against `max`).
    let udp_len = u16::try_from(len + UDP_HEADER_LEN).unwrap_or(u16::MAX);
    let mut bytes = Vec::with_capacity(Ipv6Header::LEN + UDP_HEADER_LEN + data.len());
    let ip_len = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut ip = Ipv4Header::new(udp_len, TTL, IpNumber::UDP, s.octets(), d.octets()).unwrap_or_default();
            ip.header_checksum = ip.calc_header_checksum();
            bytes.extend_from_slice(&ip.to_bytes());
            Ipv4Header::MIN_LEN
        }
        (s, d) => {
            let ip = Ipv6Header {
                payload_length: udp_len,
                next_header: IpNumber::UDP,
                hop_limit: TTL,
                source: v6(s).octets(),
                destination: v6(d).octets(),
                ..Ipv6Header::default()
            };
            bytes.extend_from_slice(&ip.to_bytes());
            Ipv6Header::LEN
        }
    };
    let udp = etherparse::UdpHeader {
        source_port: src.port(),
        destination_port: dst.port(),
        length: udp_len,
        checksum: sum,
    };
    bytes.extend_from_slice(&udp.to_bytes());
    bytes.extend_from_slice(data);
    Frame {
        bytes,
        len: u32::try_from(ip_len + usize::from(udp_len)).unwrap_or(u32::MAX),
    }
}

/// One IP family for both ends: a dual-stack socket reports an IPv4 peer as
/// `::ffff:1.2.3.4` and may be bound to `[::]`, yet the packet on the wire was IPv4.
fn same_family(src: IpAddr, dst: IpAddr) -> (IpAddr, IpAddr) {
    let unmap = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match (unmap(src), unmap(dst)) {
        (s @ IpAddr::V4(_), IpAddr::V6(d)) if d.is_unspecified() => (s, IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        (IpAddr::V6(s), d @ IpAddr::V4(_)) if s.is_unspecified() => (IpAddr::V4(Ipv4Addr::UNSPECIFIED), d),
        (s @ IpAddr::V4(_), d @ IpAddr::V4(_)) => (s, d),
        (s, d) => (IpAddr::V6(v6(s)), IpAddr::V6(v6(d))),
    }
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

fn since_epoch(time: SystemTime) -> Duration {
    time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default()
}

fn to_io(e: pcap_file::PcapError) -> io::Error {
    match e {
        pcap_file::PcapError::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// One UDP datagram found in a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// When it was captured, since 1970-01-01 UTC.
    pub time: Duration,
    /// Its sender.
    pub src: SocketAddr,
    /// Its receiver.
    pub dst: SocketAddr,
    /// The payload bytes the capture holds.
    pub data: Vec<u8>,
    /// The payload's real length (from the UDP header): more than `data.len()` when the
    /// capture cut it.
    pub len: usize,
}

/// Every UDP datagram of a pcap or pcapng file, in file order; other packets (TCP, ARP, IP
/// fragments after the first) are skipped. Reads what tcpdump, Wireshark and dumpcap write:
/// link types RAW, IPv4, IPv6, Ethernet, Linux "cooked" (SLL, SLL2, `-i any`) and BSD
/// loopback (NULL, LOOP; macOS `lo0`).
///
/// # Errors
/// [`Error::Runtime`] naming the file when it cannot be opened or is not a capture.
pub fn read_udp(path: &Path) -> Result<Vec<Captured>> {
    let what = || format!("cannot read the capture {}", path.display());
    let mut file = BufReader::new(File::open(path).map_err(|e| Error::io(what(), &e))?);
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic).map_err(|e| Error::io(what(), &e))?;
    let chained = BufReader::new(io::Cursor::new(magic).chain(file));
    let bad = |e: pcap_file::PcapError| {
        Error::Runtime(format!(
            "{}: {e}; is it a pcap or pcapng file (Wireshark: File > Save As > pcap)?",
            what()
        ))
    };
    // pcapng files open with a section header block, type 0x0A0D0D0A (a palindrome).
    if magic == [0x0a, 0x0d, 0x0d, 0x0a] {
        read_pcapng(PcapNgReader::new(chained).map_err(bad)?).map_err(bad)
    } else {
        read_pcap(PcapReader::new(chained).map_err(bad)?).map_err(bad)
    }
}

type Found = std::result::Result<Vec<Captured>, pcap_file::PcapError>;

fn read_pcap(mut reader: PcapReader<impl Read>) -> Found {
    let link = reader.header().datalink;
    let mut found = Vec::new();
    while let Some(packet) = reader.next_packet() {
        match packet {
            Ok(packet) => found.extend(udp(link, packet.timestamp, &packet.data)),
            Err(e) if cut_short(&e) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

/// A capture cut in the middle of its last record (its writer was killed, its disk filled
/// up) is read up to that record, as Wireshark does, with a warning.
fn cut_short(e: &pcap_file::PcapError) -> bool {
    let cut = matches!(e, pcap_file::PcapError::IoError(io) if io.kind() == io::ErrorKind::UnexpectedEof)
        || matches!(e, pcap_file::PcapError::IncompleteBuffer);
    if cut {
        log::warn!("the capture ends in the middle of a record (cut short); read up to the last whole one");
    }
    cut
}

fn read_pcapng(mut reader: PcapNgReader<impl Read>) -> Found {
    let mut found = Vec::new();
    // Each packet names its capturing interface by index; each interface has a link type
    // and a clock.
    let mut interfaces: Vec<(DataLink, Clock)> = Vec::new();
    while let Some(block) = reader.next_block() {
        let block = match block {
            Ok(block) => block,
            Err(e) if cut_short(&e) => break,
            Err(e) => return Err(e),
        };
        match block {
            Block::SectionHeader(_) => interfaces.clear(),
            Block::InterfaceDescription(i) => interfaces.push((i.linktype, Clock::of(&i.options))),
            Block::EnhancedPacket(p) => {
                let on = usize::try_from(p.interface_id).ok().and_then(|i| interfaces.get(i));
                found.extend(on.and_then(|(link, clock)| udp(*link, clock.time(p.timestamp), &p.data)));
            }
            // A simple packet block has no timestamp and belongs to the first interface.
            Block::SimplePacket(p) => {
                found.extend(
                    interfaces
                        .first()
                        .and_then(|(link, _)| udp(*link, Duration::ZERO, &p.data)),
                );
            }
            _ => {}
        }
    }
    Ok(found)
}

/// How a pcapng interface counts time: ticks of 10^-n (or 2^-n) seconds, 10^-6 unless its
/// `if_tsresol` option says otherwise (dumpcap writes 10^-9), from `if_tsoffset` seconds.
struct Clock {
    resolution: u8,
    offset: u64,
}

impl Clock {
    fn of(options: &[pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption<'_>]) -> Self {
        use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption as Opt;
        let mut clock = Clock {
            resolution: 6,
            offset: 0,
        };
        for option in options {
            match option {
                Opt::IfTsResol(r) => clock.resolution = *r,
                Opt::IfTsOffset(s) => clock.offset = *s,
                _ => {}
            }
        }
        clock
    }

    /// pcap-file hands over the raw tick count as if it were nanoseconds, whatever the
    /// interface's resolution.
    fn time(&self, raw: Duration) -> Duration {
        let ticks = raw.as_nanos();
        let exponent = u32::from(self.resolution & 0x7f);
        let nanos = if self.resolution & 0x80 == 0 {
            let per_second = 10u128.checked_pow(exponent).unwrap_or(u128::MAX);
            ticks.saturating_mul(1_000_000_000) / per_second
        } else {
            ticks.saturating_mul(1_000_000_000) >> exponent.min(127)
        };
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        Duration::from_nanos(nanos) + Duration::from_secs(self.offset)
    }
}

/// The UDP datagram in one captured frame, if there is one.
fn udp(link: DataLink, time: Duration, frame: &[u8]) -> Option<Captured> {
    let sliced = match link {
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => LaxSlicedPacket::from_ip(frame).ok()?,
        DataLink::ETHERNET => LaxSlicedPacket::from_ethernet(frame).ok()?,
        // The 4-byte address family in the capturing host's byte order, then IP.
        DataLink::NULL | DataLink::LOOP => LaxSlicedPacket::from_ip(frame.get(4..)?).ok()?,
        // Linux cooked: 16 bytes, the EtherType last; SLL2: 20 bytes, the EtherType first.
        DataLink::LINUX_SLL => LaxSlicedPacket::from_ether_type(ether_type(frame, 14)?, frame.get(16..)?),
        DataLink::LINUX_SLL2 => LaxSlicedPacket::from_ether_type(ether_type(frame, 0)?, frame.get(20..)?),
        _ => return None,
    };
    let (src, dst) = match sliced.net.as_ref()? {
        // A fragment carries a piece of a datagram; this reader does not reassemble them.
        LaxNetSlice::Ipv4(ip) if ip.payload().fragmented => return None,
        LaxNetSlice::Ipv6(ip) if ip.payload().fragmented => return None,
        LaxNetSlice::Ipv4(ip) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
        ),
        LaxNetSlice::Ipv6(ip) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
        ),
        LaxNetSlice::Arp(_) => return None,
    };
    let Some(TransportSlice::Udp(udp)) = sliced.transport else {
        return None;
    };
    Some(Captured {
        time,
        src: SocketAddr::new(src, udp.source_port()),
        dst: SocketAddr::new(dst, udp.destination_port()),
        data: udp.payload().to_vec(),
        len: usize::from(udp.length()).saturating_sub(UDP_HEADER_LEN),
    })
}

fn ether_type(frame: &[u8], at: usize) -> Option<etherparse::EtherType> {
    let b = frame.get(at..at + 2)?;
    Some(etherparse::EtherType(u16::from_be_bytes([b[0], b[1]])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::tshark;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("common-pcap-{}-{name}.pcap", std::process::id()))
    }

    fn hex(data: &[u8]) -> String {
        data.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// What each test writes: IPv4 and IPv6, an empty datagram, an odd length, a dual-stack
    /// (v4-mapped) peer, and one cut from 3000 to 8 bytes.
    fn write(name: &str, packets: &[Packet<'_>]) -> PathBuf {
        let path = temp(name);
        let mut pcap = Writer::create(&path).unwrap();
        for p in packets {
            pcap.record(p);
        }
        assert_eq!(pcap.records(), packets.len() as u64);
        path
    }

    #[test]
    fn ipv4_datagrams_read_back_and_tshark_finds_their_checksums_good() {
        let (a, b) = (addr("127.0.0.1:54321"), addr("127.0.0.1:8888"));
        let mapped = addr("[::ffff:127.0.0.1]:40000");
        let path = write(
            "v4",
            &[
                Packet::new(a, b, b"hello"),
                Packet::new(b, a, b""),
                Packet::new(mapped, addr("[::]:8888"), b"odd"),
            ],
        );
        let back = read_udp(&path).unwrap();
        let seen: Vec<_> = back.iter().map(|c| (c.src, c.dst, c.data.clone(), c.len)).collect();
        assert_eq!(
            seen,
            vec![
                (a, b, b"hello".to_vec(), 5),
                (b, a, vec![], 0),
                (addr("127.0.0.1:40000"), addr("0.0.0.0:8888"), b"odd".to_vec(), 3),
            ]
        );
        if tshark::available() {
            assert_eq!(
                tshark::fields(&path),
                vec![
                    format!("127.0.0.1\t\t54321\t8888\t13\t1\t33\t33\t{}", hex(b"hello")),
                    "127.0.0.1\t\t8888\t54321\t8\t1\t28\t28\t".to_string(),
                    format!("127.0.0.1\t\t40000\t8888\t11\t1\t31\t31\t{}", hex(b"odd")),
                ]
            );
            assert_eq!(tshark::expert(&path), Vec::<String>::new());
        }
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn ipv6_datagrams_read_back_and_tshark_finds_their_checksums_good() {
        let (a, b) = (addr("[::1]:5000"), addr("[2001:db8::7]:7788"));
        let path = write(
            "v6",
            &[Packet::new(a, b, b"even"), Packet::new(b, a, &[0xaa, 0x55, 0x01])],
        );
        let back = read_udp(&path).unwrap();
        let seen: Vec<_> = back.iter().map(|c| (c.src, c.dst, c.data.clone())).collect();
        assert_eq!(seen, vec![(a, b, b"even".to_vec()), (b, a, vec![0xaa, 0x55, 0x01])]);
        if tshark::available() {
            assert_eq!(
                tshark::fields(&path),
                vec![
                    format!("\t::1\t5000\t7788\t12\t1\t52\t52\t{}", hex(b"even")),
                    "\t2001:db8::7\t7788\t5000\t11\t1\t51\t51\taa5501".to_string(),
                ]
            );
            assert_eq!(tshark::expert(&path), Vec::<String>::new());
        }
        std::fs::remove_file(&path).ok();
    }

    /// A datagram cut by the receive buffer: the record holds the 8 bytes kept, and says
    /// the packet was longer (captured length < length), for IPv4 and IPv6.
    #[test]
    fn a_cut_datagram_is_recorded_cut() {
        let long = [7u8; 3000];
        let (a, b) = (addr("127.0.0.1:1000"), addr("127.0.0.1:2000"));
        let (c, d) = (addr("[::1]:1000"), addr("[::1]:2000"));
        let path = write(
            "cut",
            &[
                Packet::new(a, b, &long[..8]).cut(3000),
                Packet::new(c, d, &long[..8]).cut(3000),
            ],
        );
        let back = read_udp(&path).unwrap();
        assert_eq!(
            back.iter().map(|c| (c.data.len(), c.len)).collect::<Vec<_>>(),
            [(8, 3000), (8, 3000)]
        );
        if tshark::available() {
            let lines = tshark::fields(&path);
            assert_eq!(
                lines,
                vec![
                    format!("127.0.0.1\t\t1000\t2000\t3008\t3\t36\t3028\t{}", hex(&long[..8])),
                    format!("\t::1\t1000\t2000\t3008\t2\t56\t3048\t{}", hex(&long[..8])),
                ]
            );
            // Cut, and nothing else to say: no checksum error (none over IPv4, unverified
            // over IPv6), nothing malformed.
            assert_eq!(tshark::expert(&path), Vec::<String>::new());
        }
        std::fs::remove_file(&path).ok();
    }

    /// A file cut short (the program was killed mid-write, or the disk filled up) is read
    /// up to its last whole record; a file that is not a capture is an error naming it.
    #[test]
    fn every_record_is_on_disk_as_soon_as_it_is_written() {
        let path = temp("flushed");
        let mut pcap = Writer::create(&path).unwrap();
        pcap.record(&Packet::new(addr("127.0.0.1:1"), addr("127.0.0.1:2"), b"one"));
        // Not dropped, not flushed by anyone else: the bytes must already be in the file.
        let back = read_udp(&path).unwrap();
        assert_eq!(back.len(), 1);
        pcap.record(&Packet::new(addr("127.0.0.1:1"), addr("127.0.0.1:2"), b"two"));
        assert_eq!(read_udp(&path).unwrap().len(), 2);
        // Cut in the middle of the second record: the first is still there.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let back = read_udp(&path).unwrap();
        assert_eq!(back.iter().map(|c| c.data.as_slice()).collect::<Vec<_>>(), [b"one"]);
        std::fs::write(&path, b"not a capture at all").unwrap();
        let err = read_udp(&path).unwrap_err().to_string();
        assert!(err.contains(&*path.to_string_lossy()), "{err}");
        let nowhere = std::env::temp_dir().join("no-such-dir-for-pcap").join("x.pcap");
        let err = Writer::create(&nowhere).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot write the pcap file") && err.contains("x.pcap"),
            "{err}"
        );
        let err = read_udp(&path).unwrap_err().to_string();
        assert!(err.contains("pcap or pcapng"), "{err}");
        std::fs::remove_file(&path).ok();
    }

    const FROM: [u8; 4] = [192, 168, 1, 10];
    const TO: [u8; 4] = [192, 168, 1, 255];

    /// A frame as a capture on `link` holds it: 192.168.1.10:5000 → 192.168.1.255:7788,
    /// its payload named after the link type.
    fn frame(link: DataLink) -> (Vec<u8>, &'static [u8]) {
        use etherparse::{LinuxSllPacketType, PacketBuilder};
        let mut v = Vec::new();
        let payload: &[u8] = match link {
            DataLink::ETHERNET => b"eth",
            DataLink::LINUX_SLL => b"sll",
            _ => b"null",
        };
        match link {
            DataLink::ETHERNET => PacketBuilder::ethernet2([2; 6], [0xff; 6])
                .ipv4(FROM, TO, 64)
                .udp(5000, 7788)
                .write(&mut v, payload),
            DataLink::LINUX_SLL => PacketBuilder::linux_sll(LinuxSllPacketType::BROADCAST, 6, [2; 8])
                .ipv4(FROM, TO, 64)
                .udp(5000, 7788)
                .write(&mut v, payload),
            _ => {
                v.extend_from_slice(&[2, 0, 0, 0]); // AF_INET, as macOS writes it
                PacketBuilder::ipv4(FROM, TO, 64).udp(5000, 7788).write(&mut v, payload)
            }
        }
        .unwrap();
        (v, payload)
    }

    /// Captures made by tcpdump or Wireshark on a real interface read too: Ethernet, Linux
    /// cooked (`-i any`) and BSD loopback (macOS `lo0`); a TCP packet among them is skipped.
    #[test]
    fn captures_of_other_link_types_read_too() {
        use pcap_file::pcap::PcapWriter;
        let (src, dst) = (addr("192.168.1.10:5000"), addr("192.168.1.255:7788"));
        let mut tcp = Vec::new();
        etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(FROM, TO, 64)
            .tcp(1, 2, 3, 4)
            .write(&mut tcp, b"tcp")
            .unwrap();
        for link in [DataLink::ETHERNET, DataLink::LINUX_SLL, DataLink::NULL] {
            let path = temp("link");
            let header = PcapHeader {
                datalink: link,
                ..PcapHeader::default()
            };
            let mut w = PcapWriter::with_header(File::create(&path).unwrap(), header).unwrap();
            let time = Duration::from_micros(1_700_000_000_123_456);
            w.write_packet(&PcapPacket::new(time, tcp.len() as u32, &tcp)).unwrap();
            let (f, payload) = frame(link);
            w.write_packet(&PcapPacket::new(time, f.len() as u32, &f)).unwrap();
            drop(w);
            let back = read_udp(&path).unwrap();
            let seen: Vec<_> = back.iter().map(|c| (c.src, c.dst, c.time, c.data.as_slice())).collect();
            assert_eq!(seen, [(src, dst, time, payload)], "{link:?}");
            std::fs::remove_file(&path).ok();
        }
    }

    /// pcapng: an interface description (Ethernet, nanosecond ticks as dumpcap writes
    /// them), then an enhanced packet block; its time is read in the interface's unit.
    #[test]
    fn pcapng_reads_too() {
        use pcap_file::pcapng::PcapNgWriter;
        use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
        use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
        let path = temp("ng");
        let time = Duration::from_micros(1_700_000_000_000_001);
        {
            let mut w = PcapNgWriter::new(File::create(&path).unwrap()).unwrap();
            let mut idb = InterfaceDescriptionBlock::new(DataLink::ETHERNET, 65_535);
            idb.options.push(InterfaceDescriptionOption::IfTsResol(9));
            w.write_pcapng_block(idb).unwrap();
            let (f, _) = frame(DataLink::ETHERNET);
            let epb = EnhancedPacketBlock {
                interface_id: 0,
                // pcap-file writes the tick count as nanoseconds.
                timestamp: time,
                original_len: f.len() as u32,
                data: f.into(),
                options: vec![],
            };
            w.write_pcapng_block(epb).unwrap();
        }
        let back = read_udp(&path).unwrap();
        let seen: Vec<_> = back.iter().map(|c| (c.src, c.dst, c.data.clone(), c.time)).collect();
        let (src, dst) = (addr("192.168.1.10:5000"), addr("192.168.1.255:7788"));
        assert_eq!(seen, [(src, dst, b"eth".to_vec(), time)]);
        std::fs::remove_file(&path).ok();
    }

    /// Our own file, turned into pcapng by Wireshark's editcap (when installed), reads back
    /// the same: addresses, payloads and timestamps.
    #[test]
    fn our_file_converted_to_pcapng_by_editcap_reads_back_the_same() {
        let path = write(
            "to-ng",
            &[
                Packet::new(addr("127.0.0.1:1"), addr("127.0.0.1:2"), b"one"),
                Packet::new(addr("[::1]:3"), addr("[::1]:4"), b"two"),
            ],
        );
        let ng = temp("converted-ng");
        let converted = std::process::Command::new("editcap")
            .args(["-F", "pcapng"])
            .arg(&path)
            .arg(&ng)
            .status();
        if !tshark::available() {
            std::fs::remove_file(&path).ok();
            return;
        }
        assert!(converted.unwrap().success(), "editcap comes with tshark");
        let mut magic = [0u8; 4];
        File::open(&ng).unwrap().read_exact(&mut magic).unwrap();
        assert_eq!(magic, [0x0a, 0x0d, 0x0d, 0x0a], "a pcapng file");
        assert_eq!(read_udp(&ng).unwrap(), read_udp(&path).unwrap());
        std::fs::remove_file(&path).ok();
        std::fs::remove_file(&ng).ok();
    }

    /// A receiver's record of a datagram and of its reply: to and from the address the OS
    /// said the datagram was sent to (a broadcast address here), not the bound `0.0.0.0`;
    /// a datagram cut by the buffer is recorded cut.
    #[test]
    fn a_receiver_records_what_it_got_and_what_it_replied() {
        use crate::dest::Destination;
        use crate::receive::Incoming;
        let (peer, local) = (addr("127.0.0.1:40000"), addr("0.0.0.0:7788"));
        let to = Some(Destination {
            addr: "127.255.255.255".parse().unwrap(),
            local: None,
        });
        let got = |data, truncated| Incoming {
            data,
            peer,
            to,
            truncated,
            note: None,
        };
        let path = temp("receiver");
        let mut pcap = Writer::create(&path).unwrap();
        pcap.received(&got(b"ping", false), local);
        pcap.replied(&got(b"ping", false), local, b"pong");
        pcap.received(&got(b"12345678", true), local);
        let seen: Vec<_> = read_udp(&path)
            .unwrap()
            .into_iter()
            .map(|c| (c.src, c.dst, c.data, c.len))
            .collect();
        let bcast = addr("127.255.255.255:7788");
        assert_eq!(
            seen,
            [
                (peer, bcast, b"ping".to_vec(), 4),
                (bcast, peer, b"pong".to_vec(), 4),
                (peer, bcast, b"12345678".to_vec(), 9),
            ]
        );
        std::fs::remove_file(&path).ok();
    }
}
