#pragma once
// Why the data path dropped a packet, and one cheap counter per reason (per shard, no atomics:
// only the owning shard writes; readers copy on that shard).
#include <array>
#include <cstdint>
#include <string_view>

namespace nm {

enum class DropReason : uint8_t {
    malformed,        // the IP packet did not parse (see ParseError)
    no_nsipv6,        // an IPv6 ServiceIP chose an instance without an nsipv6
    ttl_expired,      // TTL 0: something loops
    fragment,         // a non-first fragment of a balanced (RR/Closest) flow: no ports to find it
    not_routable,     // outgoing destination is neither a ServiceIP nor in the container network
    local_loop,       // outgoing destination is in this node's own subnet (the bridge owns it)
    unknown_service,  // no entry carries the destination ServiceIP, even after a table query
    unknown_nsip,     // no entry has the destination nsip, even after a table query
    no_sender_entry,  // the sender's nsip has no entry with an InstanceNumber ServiceIP
    misdelivered,     // incoming packet for an address outside this node's subnet
    unknown_node,     // tunnel datagram from an (ip, port) that is no node in the table
    query_failed,     // counted by the forwarder: the table query failed or timed out
    backlog_full,     // counted by the forwarder: too many packets wait for one query or shard
    // Tunnel ingress (admit_incoming): what a datagram's sending node may put into our namespaces.
    foreign_source,  // inner source outside the container and service networks (1.2.3.4)
    spoofed_source,  // inner source the table places on another node (or on this one)
    unknown_source,  // inner source no entry has, even after a table query
    not_namespace,   // inner destination is this subnet's base, bridge or broadcast address
    split_failed,    // counted by the forwarder: a super-segment that could not be cut
    too_big,  // counted by the forwarder: larger than the underlay path to its peer allows, and
              // not to be fragmented (IPv6, IPv4 with DF): its sender is told the MTU instead
};
inline constexpr size_t drop_reason_count = 19;

// Stable snake_case names, for metrics labels: "unknown_service".
std::string_view to_string(DropReason reason);

struct PathCounters {
    std::array<uint64_t, drop_reason_count> drops{};
    uint64_t outgoing_cached = 0;      // outgoing packets translated from the conversion cache
    uint64_t outgoing_new_flows = 0;   // conversions created
    uint64_t outgoing_direct = 0;      // nsip-to-nsip packets tunnelled without translation
    uint64_t fragments_forwarded = 0;  // non-first fragments sent on or delivered translated
    uint64_t incoming_translated = 0;  // incoming packets reverse-translated by a conversion
    uint64_t incoming_unchanged = 0;   // incoming packets with no conversion, delivered as they are

    void drop(DropReason reason, uint64_t packets = 1) {
        drops[static_cast<size_t>(reason)] += packets;
    }
    uint64_t dropped(DropReason reason) const { return drops[static_cast<size_t>(reason)]; }
    uint64_t dropped_total() const;
    PathCounters& operator+=(const PathCounters& other);  // to sum shards for /metrics
};

}  // namespace nm
