#include "core/wakeup.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <variant>

using namespace nm;
using namespace std::chrono_literals;

namespace {

// Counts the notices a Wakeup's waiter receives until the wakeup is closed.
awaitable<void> count_wakes(Wakeup& wakeup, int& wakes, bool& ended) {
    for (;;) {
        const bool woken = co_await wakeup.wait();
        if (!woken) break;
        ++wakes;
    }
    ended = true;
}

awaitable<void> wait_broadcast(Broadcast& broadcast, int& woken) {
    const bool notified = co_await broadcast.wait();
    if (notified) ++woken;
}

}  // namespace

TEST_CASE("a wakeup given before its waiter waits is kept for that wait") {
    asio::io_context io;
    Wakeup wakeup(io.get_executor());
    wakeup.notify();
    int wakes = 0;
    bool ended = false;
    asio::co_spawn(io, count_wakes(wakeup, wakes, ended), asio::detached);
    io.run_for(20ms);
    CHECK(wakes == 1);
    CHECK_FALSE(ended);
    wakeup.close();
    io.restart();
    io.run();
    CHECK(ended);
}

TEST_CASE("wakeups given while the waiter is busy wake it once") {
    asio::io_context io;
    Wakeup wakeup(io.get_executor());
    int wakes = 0;
    bool ended = false;
    asio::co_spawn(io, count_wakes(wakeup, wakes, ended), asio::detached);
    for (int i = 0; i < 5; ++i) wakeup.notify();
    io.run_for(20ms);
    CHECK(wakes == 1);
    wakeup.notify();
    io.restart();
    io.run_for(20ms);
    CHECK(wakes == 2);
    wakeup.close();
    io.restart();
    io.run();
    CHECK(ended);
}

TEST_CASE("a broadcast wakes every coroutine waiting and keeps nothing for later waits") {
    asio::io_context io;
    Broadcast broadcast(io.get_executor());
    int woken = 0;
    for (int i = 0; i < 3; ++i)
        asio::co_spawn(io, wait_broadcast(broadcast, woken), asio::detached);
    io.run_for(10ms);  // all three are waiting
    broadcast.notify_all();
    io.restart();
    io.run_for(10ms);
    CHECK(woken == 3);

    int late = 0;
    asio::co_spawn(io, wait_broadcast(broadcast, late), asio::detached);
    io.restart();
    io.run_for(20ms);
    CHECK(late == 0);
    broadcast.close();
    io.restart();
    io.run();
    CHECK(late == 0);
}

TEST_CASE("a broadcast wait raced against a timer ends with the timer and leaves no waiter") {
    using namespace asio::experimental::awaitable_operators;
    asio::io_context io;
    Broadcast broadcast(io.get_executor());
    int which = -1;
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
            SteadyTimer timer(co_await asio::this_coro::executor, 10ms);
            auto result = co_await (broadcast.wait() || timer.async_wait());
            which = static_cast<int>(result.index());
        },
        asio::detached);
    io.run();
    CHECK(which == 1);
    // The cancelled wait is gone: a broadcast now reaches nobody.
    int woken = 0;
    broadcast.notify_all();
    asio::co_spawn(io, wait_broadcast(broadcast, woken), asio::detached);
    io.restart();
    io.run_for(10ms);
    CHECK(woken == 0);
}
