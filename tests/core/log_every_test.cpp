// Rate-limited logging (core/log_every.hpp): one line per reason per interval, with the count.
#include "core/log_every.hpp"

#include <catch2/catch.hpp>

using namespace nm;
using namespace std::chrono_literals;

TEST_CASE("a flood of one reason is reported once per interval with how often it happened") {
    LogEvery every(1s);
    const auto t0 = LogEvery::Clock::time_point{} + 100h;
    CHECK(every.due("query failed", t0) == 1);  // the first occurrence is reported at once
    uint64_t lines = 0;
    for (int i = 1; i <= 9999; ++i)
        if (every.due("query failed", t0 + std::chrono::microseconds(i * 99))) ++lines;
    CHECK(lines == 0);                                   // all within the second
    CHECK(every.due("query failed", t0 + 1s) == 10000);  // 9999 suppressed plus this one
    CHECK(every.due("query failed", t0 + 1500ms) == 0);
    CHECK(every.due("query failed", t0 + 2s) == 2);
}

TEST_CASE("each reason has its own interval") {
    LogEvery every(1s);
    const auto t0 = LogEvery::Clock::time_point{} + 100h;
    CHECK(every.due("a", t0) == 1);
    CHECK(every.due("b", t0 + 10ms) == 1);
    CHECK(every.due("a", t0 + 20ms) == 0);
    CHECK(every.due("b", t0 + 1010ms) == 1);
    CHECK(every.due("a", t0 + 1010ms) == 2);
}
