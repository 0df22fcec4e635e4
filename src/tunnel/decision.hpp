#pragma once
// The data path's decisions (protocol.md "Data path") as plain functions: given a packet, the
// shard's table replica, conversion cache and counters, say what to do with it, and rewrite it
// in place when it is to be sent on. No I/O and no Asio: the forwarder does the doing.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>

#include "core/packet.hpp"
#include "table/translation_table.hpp"
#include "tunnel/balancer.hpp"
#include "tunnel/conversion_cache.hpp"
#include "tunnel/flow_offload.hpp"
#include "tunnel/fragment_flows.hpp"
#include "tunnel/node_identity.hpp"
#include "tunnel/path_counters.hpp"
#include "tunnel/rtt_samples.hpp"
#include "tunnel/service_use.hpp"

namespace nm {

// Send the (rewritten) packet as one UDP datagram to that node's tunnel.
struct SendTo {
    Ipv4 node_ip;
    uint16_t port = 0;
    friend bool operator==(const SendTo&, const SendTo&) = default;
};
// Outgoing: the (rewritten) packet is for an instance on this node. It must now take the
// incoming path (decide_incoming, on the shard owner_shard names) and go into the TUN,
// exactly as if it had arrived through the tunnel. Incoming: write it into the TUN.
struct DeliverLocal {
    friend bool operator==(const DeliverLocal&, const DeliverLocal&) = default;
};
// The table does not know `key` (a ServiceIP, or an nsip for direct traffic): run a table query
// for it, then decide again with after_query = true. The packet is unchanged.
// A ServiceIP or nsip of either family, as the resolver takes it.
using QueryKey = std::variant<Ipv4, Ipv6>;
std::string to_string(const QueryKey& key);

struct AwaitQuery {
    QueryKey key;
    friend bool operator==(const AwaitQuery&, const AwaitQuery&) = default;
};
// Drop the packet; the reason has been counted in PathCounters already.
struct Drop {
    DropReason reason;
    friend bool operator==(const Drop&, const Drop&) = default;
};
using Decision = std::variant<SendTo, DeliverLocal, AwaitQuery, Drop>;

// Everything one shard's decisions read and write. The references outlive the calls.
struct PathContext {
    const TranslationTable& table;
    ConversionCache& cache;
    Balancer& balancer;
    const NodeIdentity& node;
    const RttEstimates& rtt;
    PathCounters& counters;
    ServiceUse& uses;  // destinations used, for the table query client's idle sweep
    RttSampleBuffer* rtt_samples = nullptr;  // passive round-trip samples; none: not taken
    FlowOffload* offload = nullptr;          // the kernel fast path; none: userspace only
    // Later fragments translated as their first fragment was; none: only those to an
    // InstanceNumber ServiceIP go on (by its address), the rest are dropped (fragment).
    FragmentFlows* fragments = nullptr;
};

// Whether a conversion made earlier (one the kernel fast path holds) still stands as the table
// has it now: its instance is there, still carries the flow's ServiceIP, the sender is still who
// it was (its InstanceNumber ServiceIP), and the instance's node and reply source are unchanged
// (a local conversion: neither is compared, its instance's nsip is of this node's subnet).
bool conversion_current(const TranslationTable& table, const FlowKey& key,
                        const Conversion& conversion);

// Hands a flow's IPv4 conversion to the kernel fast path (path.offload) when the flow is
// recorded (or its route refreshed), and again only when one of its packets, in either
// direction, shows that the kernel no longer carries it: one other than a TCP SYN, FIN or RST
// (those always take this path while the kernel keeps the entries), at most once a second (an
// entry was evicted, expired idle or pruned, or the kernel had no route to the node yet).
// Both paths call it for a packet of a flow they translate. A local flow is offered one
// direction at a time, with the source its packets get on the incoming path.
void offer_flow(Flow& flow, PathContext& path, uint8_t tcp_flags);

// A packet read from the TUN, on the shard owner_shard() names. On SendTo and
// DeliverLocal the packet has been rewritten: destination := the chosen instance's nsip,
// source := the sender's InstanceNumber ServiceIP (traffic straight to an nsip in another
// node's subnet is not rewritten). `csum` says what the TCP/UDP checksum field holds (partial
// for a TUN read with virtio NEEDS_CSUM). after_query: a query for the key has just completed,
// so a key still unknown is dropped instead of awaited again.
Decision decide_outgoing(PacketView& packet, PathContext& path, L4Csum csum = L4Csum::full,
                         bool after_query = false);
// The same over raw bytes; a packet that does not parse is dropped as malformed.
Decision decide_outgoing(std::span<uint8_t> bytes, PathContext& path, L4Csum csum = L4Csum::full,
                         bool after_query = false);

// An inner packet received through the tunnel (or a DeliverLocal packet), on the shard
// owner_shard() names: if it is a reply of a flow this node converted, its source
// becomes the ServiceIP the sender originally used. Answers DeliverLocal or Drop.
Decision decide_incoming(PacketView& packet, PathContext& path, L4Csum csum = L4Csum::full);
Decision decide_incoming(std::span<uint8_t> packet, PathContext& path, L4Csum csum = L4Csum::full);

// Tunnel ingress: may the node at `sender` (the datagram's outer source, a node of the table) put
// this inner packet (IPv4 or IPv6) into our namespaces? Its inner source must be an address the
// table places on that node: an instance's nsip (nsipv6) or its InstanceNumber ServiceIP of the
// packet's family. nullopt: admitted, go on with
// decide_incoming. Otherwise a Drop (foreign_source, spoofed_source, unknown_source; counted) or,
// for a source the table does not know yet, AwaitQuery{source} (then again with after_query).
// The destination rules are decide_incoming's. Not an authentication: a forged outer source
// is believed (docs/design.md "Tunnel ingress").
std::optional<Decision> admit_incoming(const PacketView& packet, PathContext& path, Ipv4 sender,
                                       bool after_query = false);

// Whether a datagram's source address is some node of the table (any source port: protocol.md
// "Peers"). A datagram from a node not yet known may be a new client's first packet: query its
// inner source (the sender's InstanceNumber ServiceIP) before dropping it, and count
// DropReason::unknown_node when it stays unknown.
inline bool is_known_node(const TranslationTable& table, Ipv4 ip) {
    return table.is_known_node(ip);
}

}  // namespace nm
