#pragma once
// What the underlay lets through to each peer node, learned from the kernel, so that the outgoing
// path can tell a sender its packet will not fit (core/too_big.hpp) instead of the tunnel's send
// failing (EMSGSIZE) or the datagram dying at a narrower hop. The kernel knows a path's MTU from
// the route (the underlay interface's MTU, or a route's mtu) lowered by the ICMP fragmentation
// needed messages hops sent back for our datagrams; probe(peer) reads it (WireIo::path_mtu).
// refresh() keeps every peer a packet may go to probed: a new peer at once, all of them again
// after `recheck` (hops lower a path's MTU, expiry raises it again) and after invalidate() (a
// send failed with EMSGSIZE). Between refreshes a packet no larger than fits_all() needs no
// look-up; a larger one asks inner_limit() for its peer. One per shard; no lock.
#include <boost/unordered/unordered_flat_map.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <span>

#include "core/address.hpp"

namespace nm {

class PathMtus {
  public:
    // Bytes the tunnel adds to an inner packet: the outer IPv4 header and the UDP header.
    static constexpr unsigned kOverhead = 20 + 8;
    // The path MTU toward a peer; 0 when the kernel cannot say.
    using Probe = std::function<unsigned(Ipv4)>;

    PathMtus(unsigned tunnel_mtu, Probe probe,
             std::chrono::milliseconds recheck = std::chrono::milliseconds{2000},
             size_t max_peers = 4096);

    // The largest inner packet that reaches `peer` whole: the tunnel MTU, or the path's MTU less
    // kOverhead when that is smaller. now_ms: the conversion cache's clock.
    unsigned inner_limit(Ipv4 peer, uint32_t now_ms) {
        ++lookups_;
        const auto it = peers_.find(peer.value);
        if (it != peers_.end() && it->second.generation == generation_ &&
            now_ms - it->second.checked_ms < recheck_ms_)
            return it->second.limit;
        return probe(peer, now_ms);
    }
    // The smallest limit of the peers probed (the tunnel MTU while none is narrower).
    unsigned smallest() const { return smallest_; }
    // A packet no larger reaches every peer of the last refresh() whole: smallest(), or 0 before
    // the first refresh and while there are more peers than are kept (every packet looks up).
    unsigned fits_all() const { return covered_ ? smallest_ : 0; }

    // Whether refresh() has work: the peers changed (`peers_version`, the table's version),
    // `recheck` passed since every peer was probed, or invalidate() was called.
    bool refresh_due(uint64_t peers_version, uint32_t now_ms) const {
        return peers_version != peers_version_ || recheck_due(now_ms);
    }
    // `nodes`: every node a packet may be sent to, ascending (TranslationTable::nodes(): no copy,
    // no sort), `self` among them skipped. New ones are probed, the others forgotten; when a
    // recheck is due, all of them are probed again.
    void refresh(std::span<const Ipv4> nodes, Ipv4 self, uint64_t peers_version, uint32_t now_ms);
    // Every peer is probed again at the next refresh() or use.
    void invalidate() { ++generation_; }
    uint64_t probes() const { return probes_; }
    uint64_t lookups() const { return lookups_; }  // inner_limit() calls

  private:
    struct Entry {
        unsigned limit = 0;
        uint32_t checked_ms = 0;
        uint32_t generation = 0;
    };
    unsigned probe(Ipv4 peer, uint32_t now_ms);
    bool recheck_due(uint32_t now_ms) const {
        return !refreshed_ || rechecked_generation_ != generation_ ||
               now_ms - rechecked_ms_ >= recheck_ms_;
    }
    // smallest_ and narrowest_ from every entry (the narrowest peer grew or was forgotten).
    void find_smallest();

    unsigned tunnel_mtu_;
    Probe probe_;
    uint32_t recheck_ms_;
    size_t max_peers_;
    uint32_t generation_ = 0;
    // The running minimum of the entries' limits and the peer holding it (0: none).
    unsigned smallest_;
    uint32_t narrowest_ = 0;
    uint64_t probes_ = 0, lookups_ = 0;
    // The last refresh: the peers' version, when every peer was last probed, under which
    // generation, and whether every peer fit within max_peers.
    bool refreshed_ = false;
    uint64_t peers_version_ = 0;
    uint32_t rechecked_ms_ = 0;
    uint32_t rechecked_generation_ = 0;
    bool covered_ = false;
    boost::unordered_flat_map<uint32_t, Entry> peers_;
};

}  // namespace nm
