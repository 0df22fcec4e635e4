#pragma once
// One shard's conversion (flow) cache (protocol.md "Data path"): which instance a flow was sent
// to and how its addresses were rewritten, so later packets skip the table, and replies can be
// translated back. Bounded (the oldest of a few candidates is evicted when full) and idle flows
// expire. Flows live in a slab; two flat hash maps index it by the outgoing 5-tuple and by the
// 5-tuple a reply arrives with. No Asio, not thread-safe: one cache per shard.
#include <boost/unordered/unordered_flat_map.hpp>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/address.hpp"
#include "core/packet.hpp"

namespace nm {

// A flow's 5-tuple, for either address family (Ipv4 or Ipv6).
template <class Address>
struct BasicFlowKey {
    Address source;
    Address destination;
    uint16_t source_port = 0;
    uint16_t destination_port = 0;
    uint8_t protocol = 0;
    uint8_t pad_[3] = {};  // keeps equality and hashing over defined bytes

    static BasicFlowKey of(const PacketView& packet) {
        if constexpr (std::is_same_v<Address, Ipv6>)
            return BasicFlowKey{packet.source_v6(), packet.destination_v6(), packet.source_port(),
                                packet.destination_port(), packet.protocol()};
        else
            return BasicFlowKey{packet.source(), packet.destination(), packet.source_port(),
                                packet.destination_port(), packet.protocol()};
    }
    friend bool operator==(const BasicFlowKey&, const BasicFlowKey&) = default;
};
using FlowKey = BasicFlowKey<Ipv4>;
using FlowKey6 = BasicFlowKey<Ipv6>;

struct FlowKeyHash {
    using is_avalanching = void;  // fully mixed already: the map need not mix again
    size_t operator()(const FlowKey& key) const noexcept;
    size_t operator()(const FlowKey6& key) const noexcept;
};

// Key equality for the flow indexes, word by word: a key has no padding (pad_ is zeroed), and
// the defaulted == compares an Ipv6 through a memcmp call (g++ 12), twice per IPv6 lookup.
struct FlowKeyEqual {
    template <class Address>
    bool operator()(const BasicFlowKey<Address>& a, const BasicFlowKey<Address>& b) const noexcept {
        using Key = BasicFlowKey<Address>;
        static_assert(std::has_unique_object_representations_v<Key> && sizeof(Key) % 8 == 0);
        const auto* x = reinterpret_cast<const unsigned char*>(&a);
        const auto* y = reinterpret_cast<const unsigned char*>(&b);
        uint64_t diff = 0;
        for (size_t i = 0; i < sizeof(Key); i += 8) {
            uint64_t u, v;
            std::memcpy(&u, x + i, 8);
            std::memcpy(&v, y + i, 8);
            diff |= u ^ v;
        }
        return diff == 0;
    }
};

// What the cache remembers of one flow (outgoing key: proto, sender nsip:port, ServiceIP:port).
// The addresses are of the flow's family; the underlay (node_ip) is IPv4 for both.
template <class Address>
struct BasicConversion {
    Address new_destination;  // the chosen instance's nsip
    Address new_source;       // the sender's InstanceNumber ServiceIP
    Address reply_source;  // the chosen instance's InstanceNumber ServiceIP: replies come from it
    Ipv4 node_ip;          // where the chosen instance lives
    uint16_t node_port = 0;
    bool local = false;  // the chosen instance is on this node
};
using Conversion = BasicConversion<Ipv4>;
using Conversion6 = BasicConversion<Ipv6>;

template <class Address>
struct BasicFlow {
    BasicFlowKey<Address> key;
    BasicConversion<Address> conversion;
    uint32_t last_used_ms = 0;  // milliseconds since the cache's origin
    uint32_t route_epoch = 0;   // the table's route_epoch() when last checked
    uint8_t closing = 0;        // TCP FIN or RST seen: expire after the grace period
    // The cache's now_us() when this flow's SYN went to a remote node, until its SYN-ACK comes
    // back (a passive round-trip sample); 0: none pending.
    uint32_t syn_sent_us = 0;
    // The cache's now_ms() (| 1) when the flow was last offered to the kernel fast path; 0: not
    // since its route last changed.
    uint32_t offered_ms = 0;
};
using Flow = BasicFlow<Ipv4>;
using Flow6 = BasicFlow<Ipv6>;

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

// The flows of one address family: a slab indexed by the outgoing key and by the reply key.
// Limits, clock and counters belong to the ConversionCache and are shared by both families.
template <class Address>
class FamilyFlows {
  public:
    using Key = BasicFlowKey<Address>;
    using FlowT = BasicFlow<Address>;
    FamilyFlows(const CacheLimits& limits, const uint32_t& now_ms, CacheCounters& counters)
        : limits_(limits), now_ms_(now_ms), counters_(counters) {}

    FlowT* find(const Key& key);
    FlowT* find_reply(const Key& key);
    FlowT& insert(const Key& key, const BasicConversion<Address>& conversion, uint32_t epoch);
    bool erase(const Key& key);
    size_t expire(size_t budget);
    // Once at most a quarter of the slab holds flows (after expiry or a flood), moves the flows
    // to its front and rebuilds the indexes at their size, so the memory goes back. expire()
    // calls it; no Flow pointer may be held across it.
    void shrink();
    size_t size() const { return by_key_.size(); }
    size_t capacity() const { return slab_.size(); }

  private:
    using Index = boost::unordered_flat_map<Key, uint32_t, FlowKeyHash, FlowKeyEqual>;
    bool expired(const FlowT& flow) const;
    // The live flow `index` names for `key`, counted in `hits` or `misses`; an expired one is
    // erased on the way and missed.
    FlowT* find_in(const Index& index, const Key& key, uint64_t& hits, uint64_t& misses);
    void erase_slot(uint32_t slot);
    void evict_one();
    static Key reply_key(const FlowT& flow);

    const CacheLimits& limits_;
    const uint32_t& now_ms_;
    CacheCounters& counters_;
    std::vector<FlowT> slab_;
    std::vector<uint32_t> free_;
    std::vector<uint8_t> used_;
    Index by_key_;
    Index by_reply_;
    uint32_t sweep_ = 0;  // next slab index expire() looks at
    uint32_t evict_hand_ = 0;
};

class ConversionCache {
  public:
    using Clock = std::chrono::steady_clock;
    explicit ConversionCache(CacheLimits limits = {}, Clock::time_point origin = Clock::now());
    ConversionCache(const ConversionCache&) = delete;  // the families hold references into it
    ConversionCache& operator=(const ConversionCache&) = delete;

    // The time expiry is judged by; the forwarder sets it once per batch (no clock per packet).
    void set_now(Clock::time_point now);
    // That time, in milliseconds since the cache's origin (what Flow::last_used_ms holds).
    uint32_t now_ms() const { return now_ms_; }
    // The same in microseconds (wraps after 71 minutes; differences are taken modulo 2^32).
    uint32_t now_us() const { return now_us_; }

    // Outgoing lookup by the packet's own 5-tuple. An expired flow is removed and counts as a miss.
    Flow* find(const FlowKey& key) { return v4_.find(key); }
    Flow6* find(const FlowKey6& key) { return v6_.find(key); }
    // Incoming lookup by a reply's 5-tuple: (proto, reply_source, service port, sender nsip,
    // sender port), i.e. FlowKey::of(incoming packet).
    Flow* find_reply(const FlowKey& key) { return v4_.find_reply(key); }
    Flow6* find_reply(const FlowKey6& key) { return v6_.find_reply(key); }
    // Records a new flow (replacing one with the same key); evicts if the family is full.
    Flow& insert(const FlowKey& key, const Conversion& conversion, uint32_t route_epoch) {
        return v4_.insert(key, conversion, route_epoch);
    }
    Flow6& insert(const FlowKey6& key, const Conversion6& conversion, uint32_t route_epoch) {
        return v6_.insert(key, conversion, route_epoch);
    }
    bool erase(const FlowKey& key) { return v4_.erase(key); }
    bool erase(const FlowKey6& key) { return v6_.erase(key); }
    // Marks the flow as used now; a TCP FIN or RST starts its closing grace.
    template <class Address>
    void touch(BasicFlow<Address>& flow, uint8_t tcp_flags) {
        flow.last_used_ms = now_ms_;
        if (flow.key.protocol == ipproto::tcp && (tcp_flags & 0x05)) flow.closing = 1;
    }

    // Removes up to `budget` idle flows (of each family), scanning incrementally; returns how
    // many it removed. Call it regularly (e.g. every 100 ms with a budget of a few thousand).
    // Each family whose slab is at most a quarter full afterwards shrinks (FamilyFlows::shrink),
    // so no Flow pointer may be held across it.
    size_t expire(size_t budget) { return v4_.expire(budget) + v6_.expire(budget); }
    // Slots allocated (flows plus free ones) in both families, for tests of shrinking.
    size_t capacity() const { return v4_.capacity() + v6_.capacity(); }

    size_t size() const { return v4_.size() + v6_.size(); }
    const CacheCounters& counters() const { return counters_; }
    const CacheLimits& limits() const { return limits_; }

  private:
    CacheLimits limits_;
    Clock::time_point origin_;
    uint32_t now_ms_ = 0;
    uint32_t now_us_ = 0;
    CacheCounters counters_;
    FamilyFlows<Ipv4> v4_{limits_, now_ms_, counters_};
    FamilyFlows<Ipv6> v6_{limits_, now_ms_, counters_};
};

}  // namespace nm
