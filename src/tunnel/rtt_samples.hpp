#pragma once
// Passive round-trip samples one shard's data path takes (a TCP SYN forwarded to a node, its
// SYN-ACK back from there), kept until shard 0 collects them. Fixed capacity, no allocation on
// the data path: samples beyond it until the next collection are counted and dropped, which
// bounds both their memory and their rate.
#include <array>
#include <cstdint>
#include <vector>

#include "core/address.hpp"

namespace nm {

struct RttSample {
    Ipv4 node;
    uint32_t rtt_us = 0;
    friend bool operator==(const RttSample&, const RttSample&) = default;
};

class RttSampleBuffer {
  public:
    static constexpr size_t capacity = 64;

    void add(Ipv4 node, uint32_t rtt_us) {
        if (size_ == capacity) {
            ++dropped_;
            return;
        }
        samples_[size_++] = RttSample{node, rtt_us};
    }
    // The samples since the last call, oldest first.
    std::vector<RttSample> drain() {
        std::vector<RttSample> out(samples_.begin(), samples_.begin() + size_);
        size_ = 0;
        return out;
    }
    uint64_t dropped() const { return dropped_; }

  private:
    std::array<RttSample, capacity> samples_{};
    size_t size_ = 0;
    uint64_t dropped_ = 0;
};

}  // namespace nm
