#include "tunnel/async_gate.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>

namespace nm {

awaitable<void> AsyncGate::enter() {
    while (busy_) {
        asio::steady_timer wake(co_await asio::this_coro::executor,
                                asio::steady_timer::time_point::max());
        waiters_.push_back(&wake);
        co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
        std::erase(waiters_, &wake);
    }
    busy_ = true;
}

void AsyncGate::leave() {
    busy_ = false;
    if (!waiters_.empty()) waiters_.front()->cancel();
}

}  // namespace nm
