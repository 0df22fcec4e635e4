#pragma once
// Packets waiting for a table query (design.md "Table-query misses"): one bounded queue per key
// (an IPv4 or IPv6 address), bounded in packets and in bytes. The first packet of a key asks for
// its query; when the answer is there the forwarder takes the key's queue and decides its packets
// in place.
#include <cstddef>
#include <unordered_map>

#include "core/address.hpp"
#include "tunnel/decision.hpp"
#include "tunnel/held_packets.hpp"

namespace nm {

struct ParkLimits {
    size_t packets = 256;     // packets waiting for one key; more are dropped
    size_t bytes = 4u << 20;  // bytes waiting for one key (super-segments are up to 64 KiB)
};

class ParkedPackets {
  public:
    // A datagram from a node not yet in the table waits with its source: the node must be known
    // once the query is answered.
    struct Queue {
        UdpEndpoint peer{};
        HeldPackets packets;
    };
    enum class Parked : uint8_t {
        first,   // the key had no queue: the caller starts its query
        queued,  // added behind others
        full,    // dropped: the key's queue is at a limit (or holds another peer's datagrams)
    };

    explicit ParkedPackets(ParkLimits limits) : limits_(limits) {}

    Parked park(const QueryKey& key, const Packet& packet, const PacketView& view,
                UdpEndpoint peer = {});
    // Removes the key's queue and hands it over (empty when none). Once no key waits, the map's
    // buckets go back (after a flood of keys).
    Queue release(const QueryKey& key);
    size_t keys() const { return queues_.size(); }

  private:
    ParkLimits limits_;
    std::unordered_map<QueryKey, Queue> queues_;
};

}  // namespace nm
