//! Names a platform set once, so `dest.rs` says `cfg(pktinfo)` instead of repeating the
//! list of systems (as quinn-udp's build.rs does with the same crate).

fn main() {
    cfg_aliases::cfg_aliases! {
        // Kernels that tell a datagram's destination address (IP_PKTINFO, IPV6_RECVPKTINFO)
        // and that nix reads it on.
        pktinfo: { any(target_os = "linux", target_os = "android", target_vendor = "apple") },
    }
}
