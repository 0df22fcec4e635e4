#include "core/shard.hpp"

#include <dirent.h>
#include <unistd.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <future>
#include <thread>

#include "core/gate.hpp"

using namespace nm;
using namespace std::chrono_literals;

namespace {

// Runs a coroutine on shard `i` of a started group and waits for its result.
template <class T>
T run_on(Shards& shards, unsigned i, awaitable<T> task) {
    return asio::co_spawn(shards.context(i), std::move(task), asio::use_future).get();
}

// Open descriptors of one anonymous inode kind ("[io_uring]", "[eventpoll]").
int anon_fds(std::string_view kind) {
    int count = 0;
    DIR* dir = opendir("/proc/self/fd");
    while (auto* e = readdir(dir)) {
        char target[256] = {};
        std::string path = std::string("/proc/self/fd/") + e->d_name;
        if (readlink(path.c_str(), target, sizeof target - 1) > 0 &&
            std::string_view(target) == "anon_inode:" + std::string(kind))
            ++count;
    }
    closedir(dir);
    return count;
}

// Parameters live in the coroutine frame; a lambda's captures would dangle once spawn returns.
awaitable<void> sleep_until_cancelled(std::shared_ptr<asio::steady_timer> timer,
                                      std::atomic<int>& cleaned) {
    struct Cleanup {
        std::atomic<int>& n;
        ~Cleanup() { ++n; }
    } cleanup{cleaned};
    co_await timer->async_wait(asio::use_awaitable);
}

}  // namespace

TEST_CASE("on_shard runs the function on the target shard's thread and resumes on the caller's") {
    Shards shards({.count = 2, .pin = false});
    shards.start();
    auto result = run_on(shards, 0, []() -> awaitable<std::pair<int, int>> {
        std::thread::id caller = std::this_thread::get_id();
        std::thread::id ran_on;
        int shard_inside = co_await on_shard(1, [&] {
            ran_on = std::this_thread::get_id();
            return current_shard();
        });
        REQUIRE(ran_on != caller);
        REQUIRE(std::this_thread::get_id() == caller);
        co_return std::pair{shard_inside, current_shard()};
    }());
    CHECK(result.first == 1);
    CHECK(result.second == 0);
    shards.stop();
    shards.join();
}

TEST_CASE("on_shard accepts a coroutine and passes its result and exceptions back") {
    Shards shards({.count = 2, .pin = false});
    shards.start();
    int value = run_on(shards, 1, []() -> awaitable<int> {
        int v = co_await on_shard(0, []() -> awaitable<int> {
            asio::steady_timer t(co_await asio::this_coro::executor, 1ms);
            co_await t.async_wait(asio::use_awaitable);
            co_return current_shard() + 41;
        });
        REQUIRE(current_shard() == 1);
        co_return v;
    }());
    CHECK(value == 41);
    bool caught = run_on(shards, 0, []() -> awaitable<bool> {
        try {
            co_await on_shard(1, []() -> int { throw std::runtime_error("boom"); });
        } catch (const std::runtime_error& e) {
            co_return std::string_view(e.what()) == "boom" && current_shard() == 0;
        }
        co_return false;
    }());
    CHECK(caught);
}

TEST_CASE("many concurrent cross-shard calls all complete") {
    Shards shards({.count = 3, .pin = false});
    shards.start();
    constexpr int per_shard = 2000;
    std::vector<std::future<long>> done;
    for (unsigned from = 0; from < shards.count(); ++from) {
        done.push_back(asio::co_spawn(
            shards.context(from),
            [&shards, from]() -> awaitable<long> {
                long sum = 0;
                for (int k = 0; k < per_shard; ++k) {
                    unsigned to = (from + 1 + k) % shards.count();
                    sum += co_await on_shard(to, [k] { return long{k}; });
                }
                co_return sum;
            },
            asio::use_future));
    }
    for (auto& f : done) CHECK(f.get() == long{per_shard} * (per_shard - 1) / 2);
}

TEST_CASE("stop lets running coroutines finish their cleanup, then every shard exits") {
    Shards shards({.count = 2, .pin = false});
    std::atomic<int> cleaned{0};
    for (unsigned i = 0; i < 2; ++i) {
        auto timer = std::make_shared<asio::steady_timer>(shards.context(i), 1h);
        shards.at_stop(i, [timer] { timer->cancel(); });
        shards.spawn(i, sleep_until_cancelled(timer, cleaned), "sleeper");
    }
    shards.start();
    std::this_thread::sleep_for(20ms);
    auto began = std::chrono::steady_clock::now();
    shards.stop();
    shards.join();
    CHECK(cleaned == 2);
    CHECK(std::chrono::steady_clock::now() - began < 2s);  // drained, not the hard deadline
}

TEST_CASE("stop ends a shard that ignores it once the grace period passes") {
    Shards shards({.count = 1, .pin = false});
    asio::steady_timer stubborn(shards.context(0), 1h);
    stubborn.async_wait([](auto) {});
    shards.start();
    shards.stop(100ms);
    shards.join();
    CHECK(shards.context(0).stopped());
}

TEST_CASE("every shard's executor runs on Asio's epoll reactor, never on its io_uring backend") {
    // Boost 1.81's io_uring backend completes unrelated operations with its cancels' results.
    int rings = anon_fds("[io_uring]"), epolls = anon_fds("[eventpoll]");
    Shards shards({.count = 2, .pin = false});
    // A timer forces each context's reactor up.
    for (unsigned i = 0; i < 2; ++i) {
        asio::steady_timer t(shards.context(i), 1ms);
        t.wait();
    }
    CHECK(anon_fds("[eventpoll]") - epolls >= 2);
    CHECK(anon_fds("[io_uring]") == rings);
}

TEST_CASE("shards are pinned to the cores ShardOptions::cpus names, in shard order") {
    if (std::thread::hardware_concurrency() < 2) return;  // one core: nothing to tell apart
    Shards shards({.count = 2, .cpus = {1, 0}});
    shards.start();
    auto pinned_to = []() -> awaitable<int> {
        cpu_set_t set;
        CPU_ZERO(&set);
        sched_getaffinity(0, sizeof set, &set);
        co_return CPU_COUNT(&set) == 1 ? (CPU_ISSET(0, &set) ? 0 : 1) : -1;
    };
    CHECK(run_on(shards, 0, pinned_to()) == 1);
    CHECK(run_on(shards, 1, pinned_to()) == 0);
    shards.stop();
    shards.join();
}

TEST_CASE("stop awaits every shard's closers, and their gates' holders leave before it ends") {
    Shards shards({.count = 2, .pin = false});
    struct Component {
        explicit Component(asio::io_context& context) : timer(context, 1h) {}
        asio::steady_timer timer;
        Gate gate;
        std::atomic<bool> loop_left{false}, closed{false};
        awaitable<void> loop(Gate::Holder) {
            boost::system::error_code ec;
            co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            // Still busy a while after the stop: the closer must wait for this.
            asio::steady_timer linger(co_await asio::this_coro::executor, 50ms);
            co_await linger.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            loop_left = true;
        }
        awaitable<void> close() {
            timer.cancel();
            co_await gate.close();
            closed = loop_left.load();  // true only when the holder had left first
        }
    };
    std::vector<std::unique_ptr<Component>> parts;
    for (unsigned i = 0; i < 2; ++i) {
        parts.push_back(std::make_unique<Component>(shards.context(i)));
        Component* c = parts.back().get();
        shards.spawn(i, c->loop(c->gate.hold()), "loop");
        shards.at_close(i, "component " + std::to_string(i), [c] { return c->close(); });
    }
    shards.start();
    std::this_thread::sleep_for(20ms);
    const auto began = std::chrono::steady_clock::now();
    shards.stop();
    shards.join();
    for (auto& c : parts) {
        CHECK(c->loop_left);
        CHECK(c->closed);
    }
    CHECK(shards.closing(0).empty());
    CHECK(shards.closing(1).empty());
    CHECK(std::chrono::steady_clock::now() - began < 2s);  // drained, not the hard deadline
}

TEST_CASE("a closer that never finishes is named and its shard stopped hard after the grace") {
    Shards shards({.count = 2, .pin = false});
    asio::steady_timer never(shards.context(1), 1h);
    shards.at_close(1, "a stuck component", [&never]() -> awaitable<void> {
        boost::system::error_code ec;
        co_await never.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    });
    shards.at_close(0, "a quick component", []() -> awaitable<void> { co_return; });
    shards.start();
    const auto began = std::chrono::steady_clock::now();
    shards.stop(200ms);
    shards.join();  // returns: the stop is bounded
    const auto took = std::chrono::steady_clock::now() - began;
    CHECK(took >= 200ms);
    CHECK(took < 2s);
    CHECK(shards.context(1).stopped());
    CHECK(shards.closing(1) == std::vector<std::string>{"a stuck component"});
    CHECK(shards.closing(0).empty());
}
