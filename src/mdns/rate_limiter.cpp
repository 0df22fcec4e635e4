#include "mdns/rate_limiter.hpp"

#include <algorithm>

namespace nm {

bool RateLimiter::allow(Ipv4 source, Clock::time_point now) {
    if (rate_ == 0) return true;
    const double burst = 2.0 * rate_;
    auto it = buckets_.find(source.value);
    if (it == buckets_.end()) {
        if (buckets_.size() >= max_sources_) {
            // Forget sources whose bucket has refilled: they lose nothing by it.
            boost::unordered::erase_if(buckets_, [&](auto& b) {
                return b.second.tokens +
                           std::chrono::duration<double>(now - b.second.last).count() * rate_ >=
                       burst;
            });
            if (buckets_.size() >= max_sources_) return false;
        }
        it = buckets_.emplace(source.value, Bucket{burst, now}).first;
    }
    Bucket& b = it->second;
    b.tokens =
        std::min(burst, b.tokens + std::chrono::duration<double>(now - b.last).count() * rate_);
    b.last = now;
    if (b.tokens < 1.0) return false;
    b.tokens -= 1.0;
    return true;
}

}  // namespace nm
