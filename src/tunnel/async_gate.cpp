#include "tunnel/async_gate.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>

namespace nm {

awaitable<AsyncGate::Turn> AsyncGate::enter() {
    while (busy_) {
        asio::steady_timer wake(co_await asio::this_coro::executor,
                                asio::steady_timer::time_point::max());
        // Leaves the queue also when this coroutine is destroyed while it waits.
        struct Queued {
            std::deque<asio::steady_timer*>& waiters;
            asio::steady_timer* wake;
            ~Queued() { std::erase(waiters, wake); }
        } queued{waiters_, &wake};
        waiters_.push_back(&wake);
        co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    busy_ = true;
    co_return Turn(this);
}

void AsyncGate::leave() {
    busy_ = false;
    if (!waiters_.empty()) waiters_.front()->cancel();
}

}  // namespace nm
