#include "tunnel/path_mtu.hpp"

#include <algorithm>

namespace nm {

PathMtus::PathMtus(unsigned tunnel_mtu, Probe probe, std::chrono::milliseconds recheck,
                   size_t max_peers)
    : tunnel_mtu_(tunnel_mtu),
      probe_(std::move(probe)),
      recheck_ms_(static_cast<uint32_t>(recheck.count())),
      max_peers_(max_peers),
      smallest_(tunnel_mtu) {}

unsigned PathMtus::probe(Ipv4 peer, uint32_t now_ms) {
    ++probes_;
    const unsigned path = probe_ ? probe_(peer) : 0;
    // A path narrower than the outer headers cannot be: the kernel did not know (0) or erred.
    const unsigned limit = path > kOverhead ? std::min(tunnel_mtu_, path - kOverhead) : tunnel_mtu_;
    if (peers_.size() >= max_peers_ && !peers_.contains(peer.value)) {
        peers_ = {};
        covered_ = false;
        find_smallest();
    }
    peers_.insert_or_assign(peer.value, Entry{limit, now_ms, generation_});
    if (limit <= smallest_) {
        smallest_ = limit;
        narrowest_ = peer.value;
    } else if (peer.value == narrowest_) {
        find_smallest();
    }
    return limit;
}

void PathMtus::refresh(std::span<const Ipv4> nodes, Ipv4 self, uint64_t peers_version,
                       uint32_t now_ms) {
    const bool all = recheck_due(now_ms);
    const size_t before = peers_.size();
    boost::unordered::erase_if(peers_, [&](const auto& entry) {
        return entry.first == self.value ||
               !std::ranges::binary_search(nodes, entry.first, {}, &Ipv4::value);
    });
    if (peers_.size() != before && !peers_.contains(narrowest_)) find_smallest();
    size_t kept = 0;
    for (const Ipv4 peer : nodes) {
        if (peer == self) continue;
        if (kept++ == max_peers_) break;
        if (all || !peers_.contains(peer.value)) probe(peer, now_ms);
    }
    covered_ = kept <= max_peers_;
    refreshed_ = true;
    peers_version_ = peers_version;
    if (all) {
        rechecked_ms_ = now_ms;
        rechecked_generation_ = generation_;
    }
}

void PathMtus::find_smallest() {
    smallest_ = tunnel_mtu_;
    narrowest_ = 0;
    for (const auto& [address, entry] : peers_)
        if (entry.limit <= smallest_) {
            smallest_ = entry.limit;
            narrowest_ = address;
        }
}

}  // namespace nm
