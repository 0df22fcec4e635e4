#pragma once
// Rate-limited logging: one line per reason per interval, carrying how often the reason occurred
// since the last line, so a flood costs a line a second rather than a line a packet.
//   if (auto n = limit.due("query failed")) NM_LOG(warn, "tunnel") << ... << " (" << n << "x)";
// Not thread-safe: one per shard or owner. Its memory is the reasons' names (a few per owner).
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nm {

class LogEvery {
  public:
    using Clock = std::chrono::steady_clock;
    explicit LogEvery(std::chrono::milliseconds interval = std::chrono::seconds(1))
        : interval_(interval) {}
    // Counts one occurrence of `reason`. Answers 0 while its line is not due, else the number of
    // occurrences the line reports (this one included), and starts a new interval.
    uint64_t due(std::string_view reason, Clock::time_point now = Clock::now());

  private:
    struct Reason {
        std::string name;
        Clock::time_point next;  // no line before then
        uint64_t count = 0;      // occurrences not yet reported
    };
    std::chrono::milliseconds interval_;
    std::vector<Reason> reasons_;
};

}  // namespace nm
