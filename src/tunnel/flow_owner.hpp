#pragma once
// Which shard owns a flow (design.md "Flow ownership"), and the two kernel programs that hand
// each packet to that shard in the first place: an eBPF program picking the TUN queue
// (TUNSETSTEERINGEBPF) and a classic BPF program picking the socket of the tunnel port's
// SO_REUSEPORT group. Both repeat owner_hash's 32-bit arithmetic exactly.
#include <linux/filter.h>

#include <cstdint>
#include <vector>

#include "core/error.hpp"
#include "core/icmp6_error.hpp"
#include "core/packet.hpp"

namespace nm {

// Both directions of a conversation must land on one shard although translation changes the
// addresses, so the hash covers only what does not change: the protocol and the two ports, in
// either order. The nodes at both ends of a connection so pick the same shard index for it.
inline constexpr uint32_t kOwnerMultiplier = 0x9e3779b1u, kOwnerShift = 16;
inline uint32_t owner_hash(uint8_t protocol, uint16_t port_a, uint16_t port_b) {
    return ((uint32_t{port_a} ^ port_b ^ protocol) * kOwnerMultiplier) >> kOwnerShift;
}
inline unsigned owner_shard(uint8_t protocol, uint16_t port_a, uint16_t port_b, unsigned shards) {
    return shards <= 1 ? 0 : owner_hash(protocol, port_a, port_b) % shards;
}
// The same for a packet and for its reply, translated or not. An ICMPv6 error belongs to the
// flow of the packet it quotes.
inline unsigned owner_shard(const PacketView& p, unsigned shards) {
    if (p.protocol() == ipproto::icmpv6 && !p.has_ports()) [[unlikely]]
        if (auto error = Icmp6Error::of(p))
            return owner_shard(error->protocol(), error->source_port(), error->destination_port(),
                               shards);
    return owner_shard(p.protocol(), p.source_port(), p.destination_port(), shards);
}

// Loads the eBPF program that gives each packet written to a TUN of `shard_count` queues to its
// owner's queue (ports ^ protocol for unfragmented TCP and UDP of both families, the protocol
// alone for the rest, queue 0 for IPv6 behind extension headers, which the shard reading it
// hands to its owner, counted). Returns its descriptor, which the caller closes once the
// device holds it; the error carries the verifier's last line.
Result<int> load_tun_steering_program(unsigned shard_count);

// The classic BPF program that gives each datagram of the tunnel port to the socket of its inner
// packet's owner, for a SO_REUSEPORT group of `shards` sockets that joined in shard order.
// Runs with the UDP header pulled: offset 0 is the inner IP header. Neither IPv4 nor IPv6, or
// IPv6 behind extension headers: an index past the group, which leaves the choice to the
// kernel's 4-tuple hash (and the receiving shard hands the packet to its owner, counted).
std::vector<sock_filter> reuseport_steering_program(unsigned shards);

}  // namespace nm
