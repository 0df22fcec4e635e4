#include "core/log_every.hpp"

#include <algorithm>
#include <utility>

namespace nm {

uint64_t LogEvery::due(std::string_view reason, Clock::time_point now) {
    auto it = std::find_if(reasons_.begin(), reasons_.end(),
                           [reason](const Reason& r) { return r.name == reason; });
    if (it == reasons_.end())
        it = reasons_.insert(reasons_.end(), Reason{std::string(reason), {}, 0});
    ++it->count;
    if (now < it->next) return 0;
    it->next = now + interval_;
    return std::exchange(it->count, 0);
}

}  // namespace nm
