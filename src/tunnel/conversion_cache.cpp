#include "tunnel/conversion_cache.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <type_traits>

namespace nm {

namespace {
__extension__ typedef unsigned __int128 u128;  // GCC/Clang builtin; __extension__ quiets -pedantic
}  // namespace

size_t FlowKeyHash::operator()(const FlowKey& k) const noexcept {
    // Two 64-bit halves folded by one 64x64->128 multiply (the "mulx" mix Boost uses itself):
    // cheap on the per-packet path, and every input bit reaches the high and low output bits.
    const uint64_t a = uint64_t{k.source.value} << 32 | k.destination.value;
    const uint64_t b =
        uint64_t{k.source_port} << 24 | uint64_t{k.destination_port} << 8 | k.protocol;
    const u128 r = static_cast<u128>(a ^ std::rotl(b, 40)) * 0x9e3779b97f4a7c15ULL;
    const uint64_t h = static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
    const u128 r2 = static_cast<u128>(h ^ b) * 0xc4ceb9fe1a85ec53ULL;
    return static_cast<uint64_t>(r2) ^ static_cast<uint64_t>(r2 >> 64);
}

size_t FlowKeyHash::operator()(const FlowKey6& k) const noexcept {
    // The same mix over the four 64-bit address halves, folded in turn.
    uint64_t words[4];
    std::memcpy(words, k.source.bytes.data(), 16);
    std::memcpy(words + 2, k.destination.bytes.data(), 16);
    const uint64_t b =
        uint64_t{k.source_port} << 24 | uint64_t{k.destination_port} << 8 | k.protocol;
    uint64_t h = b;
    for (uint64_t w : words) {
        const u128 r = static_cast<u128>(w ^ std::rotl(h, 40)) * 0x9e3779b97f4a7c15ULL;
        h = static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
    }
    const u128 r2 = static_cast<u128>(h ^ b) * 0xc4ceb9fe1a85ec53ULL;
    return static_cast<uint64_t>(r2) ^ static_cast<uint64_t>(r2 >> 64);
}

ConversionCache::ConversionCache(CacheLimits limits, Clock::time_point origin)
    : limits_(limits), origin_(origin) {
    if (limits_.max_flows == 0) limits_.max_flows = 1;
}

void ConversionCache::set_now(Clock::time_point now) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - origin_).count();
    now_us_ = static_cast<uint32_t>(us);         // wraps after 71 minutes (RTT differences only)
    now_ms_ = static_cast<uint32_t>(us / 1000);  // wraps after 49 days; ages are taken modulo 2^32
}

template <class A>
bool FamilyFlows<A>::expired(const FlowT& f) const {
    const uint32_t idle = now_ms_ - f.last_used_ms;
    std::chrono::milliseconds limit;
    switch (f.key.protocol) {
        case ipproto::tcp:
            limit = f.closing ? limits_.tcp_closing : limits_.tcp_idle;
            break;
        case ipproto::udp:
            limit = limits_.udp_idle;
            break;
        case ipproto::icmp:
        case ipproto::icmpv6:
            limit = limits_.icmp_idle;
            break;
        default:
            limit = limits_.other_idle;
            break;
    }
    return idle > static_cast<uint64_t>(limit.count());
}

template <class A>
typename FamilyFlows<A>::Key FamilyFlows<A>::reply_key(const FlowT& f) {
    return Key{f.conversion.reply_source, f.key.source, f.key.destination_port, f.key.source_port,
               f.key.protocol};
}

template <class A>
typename FamilyFlows<A>::FlowT* FamilyFlows<A>::find_in(const Index& index, const Key& key,
                                                        uint64_t& hits, uint64_t& misses) {
    auto it = index.find(key);
    if (it == index.end()) {
        ++misses;
        return nullptr;
    }
    const uint32_t slot = it->second;
    FlowT& f = slab_[slot];
    if (expired(f)) {
        erase_slot(slot);
        ++counters_.expirations;
        ++misses;
        return nullptr;
    }
    ++hits;
    return &f;
}

template <class A>
typename FamilyFlows<A>::FlowT* FamilyFlows<A>::find(const Key& key) {
    return find_in(by_key_, key, counters_.hits, counters_.misses);
}

template <class A>
typename FamilyFlows<A>::FlowT* FamilyFlows<A>::find_reply(const Key& key) {
    return find_in(by_reply_, key, counters_.reverse_hits, counters_.reverse_misses);
}

template <class A>
void FamilyFlows<A>::erase_slot(uint32_t slot) {
    const FlowT& f = slab_[slot];
    by_key_.erase(f.key);
    // Another flow may have claimed the same reply key later; leave its index alone.
    if (auto it = by_reply_.find(reply_key(f)); it != by_reply_.end() && it->second == slot)
        by_reply_.erase(it);
    used_[slot] = 0;
    free_.push_back(slot);
}

template <class A>
bool FamilyFlows<A>::erase(const Key& key) {
    auto it = by_key_.find(key);
    if (it == by_key_.end()) return false;
    erase_slot(it->second);
    return true;
}

// Among a few slots from the hand on, the stalest goes (an approximate LRU without a list).
template <class A>
void FamilyFlows<A>::evict_one() {
    constexpr int candidates = 8;
    const uint32_t n = static_cast<uint32_t>(slab_.size());
    uint32_t victim = UINT32_MAX;
    uint32_t oldest_age = 0;
    for (int seen = 0, steps = 0; seen < candidates && steps < static_cast<int>(n); ++steps) {
        const uint32_t slot = evict_hand_;
        evict_hand_ = evict_hand_ + 1 == n ? 0 : evict_hand_ + 1;
        if (!used_[slot]) continue;
        ++seen;
        const uint32_t age = now_ms_ - slab_[slot].last_used_ms;
        if (victim == UINT32_MAX || age > oldest_age) {
            victim = slot;
            oldest_age = age;
        }
    }
    erase_slot(victim);
    ++counters_.evictions;
}

template <class A>
typename FamilyFlows<A>::FlowT& FamilyFlows<A>::insert(const Key& key,
                                                       const BasicConversion<A>& conversion,
                                                       uint32_t route_epoch) {
    erase(key);
    if (by_key_.size() >= limits_.max_flows) evict_one();
    uint32_t slot;
    if (!free_.empty()) {
        slot = free_.back();
        free_.pop_back();
    } else {
        slot = static_cast<uint32_t>(slab_.size());
        slab_.emplace_back();
        used_.push_back(0);
    }
    FlowT& f = slab_[slot];
    f = FlowT{key, conversion, now_ms_, route_epoch, 0};
    used_[slot] = 1;
    by_key_.emplace(key, slot);
    by_reply_.insert_or_assign(reply_key(f), slot);
    ++counters_.inserts;
    return f;
}

template <class A>
size_t FamilyFlows<A>::expire(size_t budget) {
    size_t removed = 0;
    const uint32_t n = static_cast<uint32_t>(slab_.size());
    // Each slot at most once a round: looking again finds it as it was (the TUN loop runs a
    // round of 256 per batch, which over a few flows went round them dozens of times, 1.2 us
    // per batch of one ACK).
    const size_t visits = std::min<size_t>(budget, n);
    for (size_t i = 0; i < visits; ++i) {
        if (sweep_ >= n) sweep_ = 0;
        const uint32_t slot = sweep_++;
        if (used_[slot] && expired(slab_[slot])) {
            erase_slot(slot);
            ++counters_.expirations;
            ++removed;
        }
    }
    if (removed) shrink();
    return removed;
}

template <class A>
void FamilyFlows<A>::shrink() {
    constexpr size_t small = 1024;  // not worth moving: a few tens of KiB
    const size_t live = by_key_.size();
    if (slab_.size() <= small || live * 4 > slab_.size()) return;
    std::vector<uint32_t> moved(slab_.size(), UINT32_MAX);
    std::vector<FlowT> slab;
    slab.reserve(live);
    for (uint32_t slot = 0; slot < slab_.size(); ++slot) {
        if (!used_[slot]) continue;
        moved[slot] = static_cast<uint32_t>(slab.size());
        slab.push_back(slab_[slot]);
    }
    // Rebuilt from the old indexes, so a reply key two flows shared keeps its owner.
    auto remap = [&moved](const auto& index) {
        std::remove_cvref_t<decltype(index)> rebuilt;
        rebuilt.reserve(index.size());
        for (const auto& [key, slot] : index)
            if (moved[slot] != UINT32_MAX) rebuilt.emplace(key, moved[slot]);
        return rebuilt;
    };
    by_key_ = remap(by_key_);
    by_reply_ = remap(by_reply_);
    slab_ = std::move(slab);
    used_.assign(slab_.size(), 1);
    used_.shrink_to_fit();
    free_ = {};
    sweep_ = 0;
    evict_hand_ = 0;
}

template class FamilyFlows<Ipv4>;
template class FamilyFlows<Ipv6>;

}  // namespace nm
