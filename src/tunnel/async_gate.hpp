#pragma once
// One coroutine at a time through a section that may suspend (a socket send that waits for
// room): the others wait their turn in order. Single shard, no lock.
#include <boost/asio/steady_timer.hpp>
#include <deque>

#include "core/shard.hpp"

namespace nm {

class AsyncGate {
  public:
    // Waits until the gate is free and takes it.
    awaitable<void> enter();
    // Frees the gate and wakes the next waiter.
    void leave();

  private:
    bool busy_ = false;
    std::deque<asio::steady_timer*> waiters_;
};

}  // namespace nm
