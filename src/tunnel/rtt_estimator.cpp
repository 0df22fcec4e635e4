#include "tunnel/rtt_estimator.hpp"

#include <algorithm>
#include <boost/unordered/unordered_flat_set.hpp>

namespace nm {

namespace {
using std::chrono::microseconds;

// Smoothing: each sample moves the estimate a quarter of the way (a jump of the real delay is
// followed within a few samples; single outliers move it little).
microseconds smooth(microseconds old, microseconds sample) {
    return old + (sample - old) / 4;
}

// Hysteresis: the published value follows the smoothed one only once they differ by more than
// an eighth (and 200 us), so two nodes of nearly equal distance keep their order under noise.
bool moved_far(microseconds published, microseconds smoothed) {
    const auto diff = smoothed > published ? smoothed - published : published - smoothed;
    return diff > std::max(published / 8, microseconds(200));
}
}  // namespace

void RttEstimator::set_peers(std::span<const Ipv4> peers) {
    boost::unordered_flat_set<uint32_t> keep;
    for (Ipv4 p : peers) {
        keep.insert(p.value);
        if (peers_.size() < options_.max_nodes) peers_.try_emplace(p.value);
    }
    boost::unordered::erase_if(peers_, [&](const auto& p) { return !keep.contains(p.first); });
}

void RttEstimator::add_sample(Ipv4 node, microseconds rtt, RttSource source,
                              Clock::time_point now) {
    auto it = peers_.find(node.value);
    if (it == peers_.end()) return;
    PeerRtt& p = it->second;
    rtt = std::max(rtt, microseconds(1));
    // A node back after aging out starts afresh rather than from what it was long ago.
    if (!p.smoothed || !fresh(p, now)) {
        p.recent_count = 0;
        p.recent[p.recent_count++] = rtt;
        p.smoothed = rtt;
        p.published = rtt;
    } else {
        std::shift_right(p.recent.begin(), p.recent.end(), 1);
        p.recent[0] = rtt;
        p.recent_count =
            static_cast<uint8_t>(std::min<size_t>(p.recent_count + 1u, p.recent.size()));
        const auto lowest = *std::min_element(p.recent.begin(), p.recent.begin() + p.recent_count);
        p.smoothed = smooth(*p.smoothed, lowest);
        if (moved_far(p.published, *p.smoothed)) p.published = *p.smoothed;
    }
    p.last_sample = now;
    p.last_rtt = rtt;
    ++(source == RttSource::probe ? p.probe_replies : p.passive_samples);
}

void RttEstimator::probe_sent(Ipv4 node) {
    if (auto it = peers_.find(node.value); it != peers_.end()) ++it->second.probes_sent;
}

void RttEstimator::probe_lost(Ipv4 node) {
    if (auto it = peers_.find(node.value); it != peers_.end()) ++it->second.probes_lost;
}

bool RttEstimator::fresh(const PeerRtt& peer, Clock::time_point now) const {
    return peer.smoothed && now - peer.last_sample <= options_.stale_after;
}

RttEstimates RttEstimator::snapshot(Clock::time_point now) const {
    RttEstimates out;
    for (const auto& [ip, peer] : peers_)
        if (fresh(peer, now)) out.set(Ipv4{ip}, peer.published);
    return out;
}

const PeerRtt* RttEstimator::find(Ipv4 node) const {
    auto it = peers_.find(node.value);
    return it == peers_.end() ? nullptr : &it->second;
}

}  // namespace nm
