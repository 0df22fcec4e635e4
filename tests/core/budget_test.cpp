#include "core/budget.hpp"

#include <catch2/catch.hpp>
#include <thread>
#include <vector>

using namespace nm;

TEST_CASE("a budget hands out at most its limit of tokens, and a destroyed token gives one back") {
    Budget budget(2);
    auto a = budget.try_take();
    auto b = budget.try_take();
    REQUIRE(a);
    REQUIRE(b);
    CHECK_FALSE(budget.try_take());
    CHECK(budget.used() == 2);
    a.reset();
    CHECK(budget.used() == 1);
    auto c = budget.try_take();
    CHECK(c);
    CHECK_FALSE(budget.try_take());
}

TEST_CASE("threads taking and returning tokens at once never exceed the limit") {
    Budget budget(3);
    std::atomic<size_t> most{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int k = 0; k < 20000; ++k) {
                auto token = budget.try_take();
                if (!token) continue;
                size_t now = budget.used(), seen = most.load();
                while (now > seen && !most.compare_exchange_weak(seen, now)) {
                }
            }
        });
    for (auto& t : threads) t.join();
    CHECK(most.load() <= 3);
    CHECK(most.load() >= 1);
    CHECK(budget.used() == 0);
}

TEST_CASE("a token that outlives its budget gives back without touching it") {
    std::optional<Budget::Token> token;
    {
        Budget budget(1);
        token = budget.try_take();
        REQUIRE(token);
    }
    token.reset();  // asan: no use after free
    SUCCEED();
}
