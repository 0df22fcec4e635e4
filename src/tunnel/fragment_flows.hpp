#pragma once
// The flows of fragmented datagrams. Only a datagram's first fragment carries its ports, so only
// it can be given to its flow's owner shard and translated by its flow; the later fragments share
// with it just the addresses, the protocol and the identification. Per shard, both jobs keyed by
// those (as the packet arrived, and by direction):
//  - the shard that reads a first fragment notes which shard owns it, and hands the later
//    fragments it reads to that shard too (owner);
//  - the owner notes how it translated the first fragment (the addresses and, going out, the
//    node), and translates the later ones the same way (way).
// Bounded: when full it starts over; entries older than the reassembly timeout are not used.
// Times are the conversion cache's milliseconds. Not thread-safe: one per shard.
#include <boost/container_hash/hash.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdint>
#include <optional>

#include "core/address.hpp"
#include "core/packet.hpp"

namespace nm {

// How a first fragment was translated: its new addresses, and the node it went to (outgoing).
template <class A>
struct FragmentWay {
    A source{}, destination{};
    Ipv4 node_ip{};
    uint16_t node_port = 0;
    bool local = false;
};

class FragmentFlows {
  public:
    // RFC 8200 4.5 and Linux's ipfrag_time: a datagram's fragments arrive within 60 s.
    static constexpr uint32_t kLifetimeMs = 60'000;

    explicit FragmentFlows(size_t max_entries = 4096) : max_(max_entries) {}

    // By the shard that read a fragment (outgoing: from the TUN). A first fragment: notes
    // `owner` (its flow's) and returns it. A later one: the owner its first fragment noted, else
    // `owner` (the shard its own hash names).
    unsigned owner(const PacketView& packet, bool outgoing, unsigned owner, uint32_t now_ms);

    // By the owner: notes the way of a first fragment (`packet` as it arrived, before the
    // rewrite), and looks it up for a later one.
    template <class A>
    void record(const PacketView& packet, bool outgoing, const FragmentWay<A>& way,
                uint32_t now_ms) {
        Entry<A>& e = entry(maps<A>(), packet, outgoing, now_ms);
        e.way = way;
    }
    template <class A>
    const FragmentWay<A>* find(const PacketView& packet, bool outgoing, uint32_t now_ms) {
        auto& map = maps<A>();
        const auto it = map.find(key_of<A>(packet, outgoing));
        if (it == map.end() || !it->second.way || now_ms - it->second.since_ms > kLifetimeMs)
            return nullptr;
        return &*it->second.way;
    }

    size_t size() const { return v4_.size() + v6_.size(); }

  private:
    template <class A>
    struct Key {
        A source{}, destination{};
        uint32_t id = 0;
        uint8_t protocol = 0;
        bool outgoing = false;
        friend bool operator==(const Key&, const Key&) = default;
    };
    template <class A>
    struct KeyHash {
        size_t operator()(const Key<A>& k) const noexcept {
            size_t h = std::hash<A>{}(k.source);
            boost::hash_combine(h, std::hash<A>{}(k.destination));
            boost::hash_combine(h, k.id);
            boost::hash_combine(h, k.protocol << 1 | static_cast<unsigned>(k.outgoing));
            return h;
        }
    };
    template <class A>
    struct Entry {
        uint32_t since_ms = 0;
        int owner = -1;
        std::optional<FragmentWay<A>> way;
    };
    template <class A>
    using Map = boost::unordered_flat_map<Key<A>, Entry<A>, KeyHash<A>>;

    template <class A>
    static Key<A> key_of(const PacketView& p, bool outgoing) {
        if constexpr (std::is_same_v<A, Ipv4>)
            return {p.source(), p.destination(), p.fragment_id(), p.protocol(), outgoing};
        else
            return {p.source_v6(), p.destination_v6(), p.fragment_id(), p.protocol(), outgoing};
    }
    template <class A>
    Map<A>& maps() {
        if constexpr (std::is_same_v<A, Ipv4>)
            return v4_;
        else
            return v6_;
    }
    // The entry of the packet's datagram, made (or made afresh, when stale) by its first fragment.
    template <class A>
    Entry<A>& entry(Map<A>& map, const PacketView& p, bool outgoing, uint32_t now_ms) {
        if (map.size() >= max_) map = {};  // a flood of fragmented datagrams: start over
        Entry<A>& e = map[key_of<A>(p, outgoing)];
        if (now_ms - e.since_ms > kLifetimeMs) e = Entry<A>{};  // an earlier datagram's id
        e.since_ms = now_ms;
        return e;
    }
    template <class A>
    unsigned owner_in(Map<A>& map, const PacketView& p, bool outgoing, unsigned owner,
                      uint32_t now_ms);

    size_t max_;
    Map<Ipv4> v4_;
    Map<Ipv6> v6_;
};

}  // namespace nm
