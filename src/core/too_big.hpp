#pragma once
// The ICMP error a tunnel endpoint answers an inner packet with when the packet will not fit the
// underlay path to its peer, as the kernel's own tunnels do (ip_tunnel, vxlan): an ICMPv6 packet
// too big (RFC 4443 3.2) for IPv6, an ICMP destination unreachable "fragmentation needed and DF
// set" (RFC 792, RFC 1191) for IPv4. It goes to the packet's sender from the packet's
// destination, so the sender's kernel lowers its path MTU toward that destination.
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/packet.hpp"

namespace nm {

// Bytes of the offending packet an error quotes: its headers and the start of its payload (a
// receiver needs the IP header and the 8 bytes after it; RFC 4443 allows up to 1232).
inline constexpr size_t kTooBigQuote = 256;
// The largest error build_too_big writes: an IPv6 header, the ICMPv6 header and the quote.
inline constexpr size_t kTooBigMax = 40 + 8 + kTooBigQuote;
// The smallest MTU a packet too big may announce: every IPv6 link carries 1280 bytes (RFC 8200
// 5), and senders ignore less.
inline constexpr unsigned kMinMtuV6 = 1280;

// Whether the packet must reach its destination whole: every IPv6 packet (only its sender may
// fragment it), an IPv4 packet with DF set.
bool forbids_fragmentation(const PacketView& packet);

// Whether an error may be sent about the packet: not about an ICMP error (RFC 1122 3.2.2,
// RFC 4443 2.4 e), nor about a later fragment.
bool may_answer(const PacketView& packet);

// Writes into `out` (kTooBigMax bytes at least) the error about the packet `original` begins (at
// least its IP header and 8 bytes more, as it was sent: untranslated) announcing `mtu`, and
// returns its size; 0 when `original` is too short or `out` too small.
size_t build_too_big(std::span<const uint8_t> original, unsigned mtu, std::span<uint8_t> out);

}  // namespace nm
