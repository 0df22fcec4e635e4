#include "core/async_mutex.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <string>

#include "core/wakeup.hpp"

using namespace nm;
using namespace std::chrono_literals;

namespace {

// Takes the mutex, logs "<name>+", suspends for a while inside, logs "<name>-".
awaitable<void> section(AsyncMutex& mutex, std::string name, std::string& log) {
    auto lock = co_await mutex.lock();
    log += name + "+";
    SteadyTimer inside(co_await asio::this_coro::executor, 5ms);
    co_await inside.async_wait();
    log += name + "-";
}

}  // namespace

TEST_CASE("an async mutex lets one coroutine in at a time and the others in arrival order") {
    asio::io_context io;
    AsyncMutex mutex(io.get_executor());
    std::string log;
    for (const char* name : {"a", "b", "c"})
        asio::co_spawn(io, section(mutex, name, log), asio::detached);
    io.run();
    CHECK(log == "a+a-b+b-c+c-");
    CHECK_FALSE(mutex.locked());
}

TEST_CASE("an async mutex is locked while a lock lives and free after") {
    asio::io_context io;
    AsyncMutex mutex(io.get_executor());
    bool checked = false;
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
            {
                auto lock = co_await mutex.lock();
                CHECK(mutex.locked());
            }
            CHECK_FALSE(mutex.locked());
            checked = true;
        },
        asio::detached);
    io.run();
    CHECK(checked);
}

TEST_CASE("a wait for the mutex cancelled by a timer takes no turn") {
    using namespace asio::experimental::awaitable_operators;
    asio::io_context io;
    AsyncMutex mutex(io.get_executor());
    Wakeup release(io.get_executor());
    std::string log;
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
            auto held = co_await mutex.lock();
            const bool woken = co_await release.wait();
            log += woken ? "released," : "closed,";
        },
        asio::detached);
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
            SteadyTimer give_up(co_await asio::this_coro::executor, 5ms);
            auto result = co_await (mutex.lock() || give_up.async_wait());
            log += result.index() == 0 ? "locked," : "gave up,";
        },
        asio::detached);
    while (log.empty()) io.run_one();
    CHECK(log == "gave up,");
    CHECK(mutex.locked());
    release.notify();
    io.run();
    CHECK(log == "gave up,released,");
    CHECK_FALSE(mutex.locked());
    // The cancelled wait left nothing behind: the next lock is taken at once.
    bool again = false;
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
            auto lock = co_await mutex.lock();
            again = true;
        },
        asio::detached);
    io.restart();
    io.run();
    CHECK(again);
}
