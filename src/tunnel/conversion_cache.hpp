#pragma once
// One shard's conversion (flow) cache (protocol.md "Data path"): which instance a flow was sent
// to and how its addresses were rewritten, so later packets skip the table, and replies can be
// translated back. Bounded (the oldest of a few candidates is evicted when full) and idle flows
// expire. Flows live in a slab; two flat hash maps index it by the outgoing 5-tuple and by the
// 5-tuple a reply arrives with. No Asio, not thread-safe: one cache per shard.
#include <boost/unordered/unordered_flat_map.hpp>
#include <chrono>
#include <cstdint>
#include <vector>

#include "core/address.hpp"
#include "core/packet.hpp"

namespace nm {

struct FlowKey {
    Ipv4 source;
    Ipv4 destination;
    uint16_t source_port = 0;
    uint16_t destination_port = 0;
    uint8_t protocol = 0;
    uint8_t pad_[3] = {};  // keeps equality and hashing over defined bytes

    static FlowKey of(const PacketView& packet) {
        return FlowKey{packet.source(), packet.destination(), packet.source_port(),
                       packet.destination_port(), packet.protocol()};
    }
    friend bool operator==(const FlowKey&, const FlowKey&) = default;
};

struct FlowKeyHash {
    using is_avalanching = void;  // fully mixed already: the map need not mix again
    size_t operator()(const FlowKey& key) const noexcept;
};

// What the cache remembers of one flow (outgoing key: proto, sender nsip:port, ServiceIP:port).
struct Conversion {
    Ipv4 new_destination;  // the chosen instance's nsip
    Ipv4 new_source;       // the sender's InstanceNumber ServiceIP
    Ipv4 reply_source;     // the chosen instance's InstanceNumber ServiceIP: replies come from it
    Ipv4 node_ip;          // where the chosen instance lives
    uint16_t node_port = 0;
    bool local = false;  // the chosen instance is on this node
};

struct Flow {
    FlowKey key;
    Conversion conversion;
    uint32_t last_used_ms = 0;  // milliseconds since the cache's origin
    uint32_t route_epoch = 0;   // the table's route_epoch() when last checked
    uint8_t closing = 0;        // TCP FIN or RST seen: expire after the grace period
    // The cache's now_us() when this flow's SYN went to a remote node, until its SYN-ACK comes
    // back (a passive round-trip sample); 0: none pending.
    uint32_t syn_sent_us = 0;
};

struct CacheLimits {
    size_t max_flows = 1 << 20;
    std::chrono::milliseconds udp_idle{30'000};
    std::chrono::milliseconds icmp_idle{10'000};
    std::chrono::milliseconds tcp_idle{3'600'000};  // a TCP flow with no FIN/RST seen
    std::chrono::milliseconds tcp_closing{10'000};  // after FIN or RST
    std::chrono::milliseconds other_idle{30'000};   // other protocols
};

struct CacheCounters {
    uint64_t hits = 0, misses = 0;  // outgoing lookups
    uint64_t reverse_hits = 0, reverse_misses = 0;
    uint64_t inserts = 0, evictions = 0, expirations = 0;
};

class ConversionCache {
  public:
    using Clock = std::chrono::steady_clock;
    explicit ConversionCache(CacheLimits limits = {}, Clock::time_point origin = Clock::now());

    // The time expiry is judged by; the forwarder sets it once per batch (no clock per packet).
    void set_now(Clock::time_point now);
    // That time, in milliseconds since the cache's origin (what Flow::last_used_ms holds).
    uint32_t now_ms() const { return now_ms_; }
    // The same in microseconds (wraps after 71 minutes; differences are taken modulo 2^32).
    uint32_t now_us() const { return now_us_; }

    // Outgoing lookup by the packet's own 5-tuple. An expired flow is removed and counts as a miss.
    Flow* find(const FlowKey& key);
    // Incoming lookup by a reply's 5-tuple: (proto, reply_source, service port, sender nsip,
    // sender port), i.e. FlowKey::of(incoming packet).
    Flow* find_reply(const FlowKey& key);
    // Records a new flow (replacing one with the same key); evicts if the cache is full.
    Flow& insert(const FlowKey& key, const Conversion& conversion, uint32_t route_epoch);
    bool erase(const FlowKey& key);
    // Marks the flow as used now; a TCP FIN or RST starts its closing grace.
    void touch(Flow& flow, uint8_t tcp_flags) {
        flow.last_used_ms = now_ms_;
        if (flow.key.protocol == ipproto::tcp && (tcp_flags & 0x05)) flow.closing = 1;
    }

    // Removes up to `budget` idle flows, scanning incrementally; returns how many it removed.
    // Call it regularly (e.g. every 100 ms with a budget of a few thousand).
    size_t expire(size_t budget);
    // Once at most a quarter of the slab holds flows (after expiry or a flood), moves the flows
    // to its front and rebuilds the indexes at their size, so the memory goes back. expire()
    // calls it; no Flow pointer may be held across it.
    void shrink();
    // Slots allocated (flows plus free ones), for tests of shrink().
    size_t capacity() const { return slab_.size(); }

    size_t size() const { return by_key_.size(); }
    const CacheCounters& counters() const { return counters_; }
    const CacheLimits& limits() const { return limits_; }

  private:
    bool expired(const Flow& flow) const;
    void erase_slot(uint32_t slot);
    uint32_t evict_one();
    static FlowKey reply_key(const Flow& flow);

    CacheLimits limits_;
    Clock::time_point origin_;
    uint32_t now_ms_ = 0;
    uint32_t now_us_ = 0;
    std::vector<Flow> slab_;
    std::vector<uint32_t> free_;
    std::vector<uint8_t> used_;
    boost::unordered_flat_map<FlowKey, uint32_t, FlowKeyHash> by_key_;
    boost::unordered_flat_map<FlowKey, uint32_t, FlowKeyHash> by_reply_;
    uint32_t sweep_ = 0;  // next slab index expire() looks at
    uint32_t evict_hand_ = 0;
    CacheCounters counters_;
};

}  // namespace nm
