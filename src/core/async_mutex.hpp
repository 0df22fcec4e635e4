#pragma once
// One coroutine at a time through a section that may suspend (a socket send that waits for
// room); the others wait their turn in arrival order. A channel with room for one message is
// the lock: sending takes it (waiting while it is full), receiving frees it. Single shard.
#include <utility>

#include "core/channel.hpp"

namespace nm {

class AsyncMutex {
  public:
    // Holds the mutex; frees it (and lets the next waiter in) when destroyed.
    class Lock {
      public:
        explicit Lock(AsyncMutex* mutex) : mutex_(mutex) {}
        Lock(Lock&& other) noexcept : mutex_(std::exchange(other.mutex_, nullptr)) {}
        Lock& operator=(Lock&&) = delete;
        Lock(const Lock&) = delete;
        Lock& operator=(const Lock&) = delete;
        ~Lock() {
            if (mutex_) mutex_->unlock();
        }

      private:
        AsyncMutex* mutex_;
    };

    explicit AsyncMutex(const asio::any_io_executor& executor) : channel_(executor, 1) {}

    // Waits until the mutex is free and holds it for as long as the Lock lives. Throws
    // boost::system::system_error when the wait is cancelled.
    [[nodiscard]] awaitable<Lock> lock() {
        // Free: taken without a trip through the executor (the data path locks per batch).
        if (channel_.try_send(boost::system::error_code{})) co_return Lock(this);
        auto [ec] = co_await channel_.async_send(boost::system::error_code{});
        if (ec) throw boost::system::system_error(ec, "AsyncMutex::lock");
        co_return Lock(this);
    }
    // Held by someone: a lock() now would wait.
    bool locked() const { return channel_.ready(); }

  private:
    void unlock() {
        channel_.try_receive([](boost::system::error_code) {});
    }

    Channel<void(boost::system::error_code)> channel_;
};

}  // namespace nm
