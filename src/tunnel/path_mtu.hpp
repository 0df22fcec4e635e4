#pragma once
// What the underlay lets through to each peer node, learned from the kernel, so that the outgoing
// path can tell a sender its packet will not fit (core/too_big.hpp) instead of the tunnel's send
// failing (EMSGSIZE) or the datagram dying at a narrower hop. The kernel knows a path's MTU from
// the route (the underlay interface's MTU, or a route's mtu) lowered by the ICMP fragmentation
// needed messages hops sent back for our datagrams; probe(peer) reads it (WireIo::path_mtu).
// A peer is probed the first time it is asked about, again after `recheck` (hops lower a path's
// MTU, expiry raises it again) and at once after invalidate() (a send failed with EMSGSIZE).
// One per shard; no lock.
#include <boost/unordered/unordered_flat_map.hpp>
#include <chrono>
#include <cstdint>
#include <functional>

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
        const auto it = peers_.find(peer.value);
        if (it != peers_.end() && it->second.generation == generation_ &&
            now_ms - it->second.checked_ms < recheck_ms_)
            return it->second.limit;
        return probe(peer, now_ms);
    }
    // The smallest limit of the peers probed (the tunnel MTU while none is narrower): a packet
    // no larger fits every known path.
    unsigned smallest() const { return smallest_; }
    // Every peer is probed again at its next use.
    void invalidate() { ++generation_; }
    uint64_t probes() const { return probes_; }

  private:
    struct Entry {
        unsigned limit = 0;
        uint32_t checked_ms = 0;
        uint32_t generation = 0;
    };
    unsigned probe(Ipv4 peer, uint32_t now_ms);
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
    uint64_t probes_ = 0;
    boost::unordered_flat_map<uint32_t, Entry> peers_;
};

}  // namespace nm
