#include "core/sharded.hpp"

#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <stdexcept>
#include <thread>

using namespace nm;
using namespace std::chrono_literals;

namespace {

// Records on which shard each thing happened to it.
struct Probe {
    explicit Probe(unsigned made_for) : made_for(made_for), made_on(current_shard()) {}
    ~Probe() { destroyed_on->at(made_for) = current_shard(); }
    awaitable<void> close() {
        closed_on = current_shard();
        co_return;
    }
    unsigned made_for;
    int made_on;
    int used_on = -1;
    int closed_on = -1;
    std::vector<int>* destroyed_on = nullptr;
};

template <class T>
T run_on(Shards& shards, unsigned i, awaitable<T> task) {
    return asio::co_spawn(shards.context(i), std::move(task), asio::use_future).get();
}

}  // namespace

TEST_CASE("a sharded value makes, uses, closes and destroys each instance on its own shard") {
    Shards shards({.count = 3, .pin = false});
    shards.start();
    Sharded<Probe> probes(shards);
    std::vector<int> destroyed_on(3, -1);
    std::vector<std::tuple<int, int, int>> seen(3);
    run_on(shards, 0, [&]() -> awaitable<void> {
        co_await probes.start([&](unsigned shard) {
            auto p = std::make_unique<Probe>(shard);
            p->destroyed_on = &destroyed_on;
            return p;
        });
        co_await probes.invoke_on_all([](Probe& p) { p.used_on = current_shard(); });
        co_await probes.invoke_on_all([&seen](Probe& p) -> awaitable<void> {
            seen[p.made_for] = {p.made_on, p.used_on, current_shard()};
            co_return;
        });
        co_await probes.stop();
    }());
    for (int shard = 0; shard < 3; ++shard) {
        CHECK(seen[shard] == std::tuple{shard, shard, shard});
        CHECK(destroyed_on[shard] == shard);
    }
    shards.stop();
    shards.join();
}

TEST_CASE("invoke_on runs on the target shard and resumes the caller on its own") {
    Shards shards({.count = 2, .pin = false});
    shards.start();
    Sharded<Probe> probes(shards);
    std::vector<int> destroyed_on(2, -1);
    auto [plain, coroutine, caller] =
        run_on(shards, 0, [&]() -> awaitable<std::tuple<int, int, int>> {
            co_await probes.start([&](unsigned shard) {
                auto p = std::make_unique<Probe>(shard);
                p->destroyed_on = &destroyed_on;
                return p;
            });
            int a = co_await probes.invoke_on(
                1, [](Probe& p) { return p.made_on * 10 + current_shard(); });
            int b = co_await probes.invoke_on(1, [](Probe& p) -> awaitable<int> {
                SteadyTimer t(co_await asio::this_coro::executor, 1ms);
                co_await t.async_wait();
                co_return static_cast<int>(p.made_for) + 100 * current_shard();
            });
            int here = current_shard();
            co_await probes.stop();
            co_return std::tuple{a, b, here};
        }());
    CHECK(plain == 11);       // made on shard 1, run on shard 1
    CHECK(coroutine == 101);  // shard 1's instance, resumed on shard 1 after its own wait
    CHECK(caller == 0);
    shards.stop();
    shards.join();
}

TEST_CASE("a failure in invoke_on_all reaches the caller after every shard ran") {
    Shards shards({.count = 3, .pin = false});
    shards.start();
    Sharded<std::atomic<int>> counters(shards);
    std::atomic<int> ran = 0;
    std::string error = run_on(shards, 0, [&]() -> awaitable<std::string> {
        co_await counters.start([](unsigned) { return std::make_unique<std::atomic<int>>(0); });
        std::string what;
        try {
            co_await counters.invoke_on_all([&ran](std::atomic<int>&) {
                ++ran;
                if (current_shard() == 1) throw std::runtime_error("shard 1 failed");
            });
        } catch (const std::runtime_error& e) {
            what = e.what();
        }
        co_await counters.stop();
        co_return what;
    }());
    CHECK(error == "shard 1 failed");
    CHECK(ran == 3);
    shards.stop();
    shards.join();
}

TEST_CASE("local is the calling shard's instance") {
    Shards shards({.count = 2, .pin = false});
    shards.start();
    Sharded<int> values(shards);
    int seen = run_on(shards, 0, [&]() -> awaitable<int> {
        co_await values.start([](unsigned shard) { return std::make_unique<int>(int(shard) + 7); });
        int mine = values.local();
        int theirs = co_await values.invoke_on(1, [&values](int&) { return values.local(); });
        co_await values.stop();
        co_return mine * 100 + theirs;
    }());
    CHECK(seen == 7 * 100 + 8);
    shards.stop();
    shards.join();
}
