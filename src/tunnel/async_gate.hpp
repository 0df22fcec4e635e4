#pragma once
// One coroutine at a time through a section that may suspend (a socket send that waits for
// room): the others wait their turn in order. Single shard, no lock.
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <utility>

#include "core/shard.hpp"

namespace nm {

class AsyncGate {
  public:
    // Holding the gate; frees it (and wakes the next waiter) when destroyed.
    class Turn {
      public:
        explicit Turn(AsyncGate* gate) : gate_(gate) {}
        Turn(Turn&& other) noexcept : gate_(std::exchange(other.gate_, nullptr)) {}
        Turn& operator=(Turn&&) = delete;
        ~Turn() {
            if (gate_) gate_->leave();
        }

      private:
        AsyncGate* gate_;
    };

    // Waits until the gate is free and takes it for as long as the Turn lives.
    [[nodiscard]] awaitable<Turn> enter();
    bool busy() const { return busy_; }

  private:
    void leave();

    bool busy_ = false;
    std::deque<asio::steady_timer*> waiters_;
};

}  // namespace nm
