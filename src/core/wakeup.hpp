#pragma once
// Channels used as signals between coroutines of one shard, instead of timers set to expire
// never and cancelled to wake their waiter.
//   Wakeup: one waiter (a loop) is told that there is work; notices coalesce, and one given
//     while the loop is busy is kept for its next wait, so none is lost.
//   Broadcast: every coroutine waiting right now is woken; nothing is kept for later waits
//     (a waiter checks its condition before it waits, as with a condition variable).
// Take wait()'s result into a variable first: g++-12 miscompiles `while (co_await w.wait())`
// and `if (co_await b.wait())` here (SIGILL, a wild `this`).
#include "core/channel.hpp"

namespace nm {

class Wakeup {
  public:
    explicit Wakeup(const asio::any_io_executor& executor) : channel_(executor, 1) {}

    void notify() { channel_.try_send(boost::system::error_code{}); }
    // True after a notice (at once for one given earlier), false once closed.
    awaitable<bool> wait() {
        auto [ec] = co_await channel_.async_receive();
        co_return !ec;
    }
    // Ends the current wait and every later one with false.
    void close() { channel_.close(); }

  private:
    Channel<void(boost::system::error_code)> channel_;
};

class Broadcast {
  public:
    explicit Broadcast(const asio::any_io_executor& executor) : channel_(executor, 0) {}

    // With no room in the channel a send succeeds only into a waiting receive: one per waiter.
    void notify_all() {
        while (channel_.try_send(boost::system::error_code{})) {
        }
    }
    // True when woken by notify_all, false once closed or when the wait was cancelled (as the
    // losing side of `wait() || timer`).
    awaitable<bool> wait() {
        auto [ec] = co_await channel_.async_receive();
        co_return !ec;
    }
    // Ends every current and later wait with false.
    void close() { channel_.close(); }

  private:
    Channel<void(boost::system::error_code)> channel_;
};

}  // namespace nm
