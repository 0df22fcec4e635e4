#include "core/retry.hpp"

#include <boost/asio/this_coro.hpp>
#include <cerrno>

namespace nm {

std::optional<std::chrono::milliseconds> retry_after(int os_error) {
    using std::chrono::milliseconds;
    switch (os_error) {
        case EINTR:
        case EAGAIN:
        case ECONNABORTED:  // a peer gave up before accept or during a receive
        case ECONNRESET:
        case ECONNREFUSED:  // an ICMP error queued on a UDP socket
        case EHOSTUNREACH:
        case ENETUNREACH:
        case ENETDOWN:
        case EPROTO:
        case EPERM:  // a firewall refused one connection
        case ETIMEDOUT:
            return milliseconds(0);
        case ENOBUFS:
        case ENOMEM:
            return milliseconds(10);
        case EMFILE:  // out of descriptors: give connections time to close
        case ENFILE:
            return milliseconds(100);
        default:
            return std::nullopt;
    }
}

awaitable<Result<void>> back_off(int os_error, const char* what, uint64_t& retries) {
    const auto pause = retry_after(os_error);
    if (!pause) co_return fail_errno(what, os_error);
    ++retries;
    if (pause->count() == 0) co_return Result<void>{};
    SteadyTimer timer(co_await asio::this_coro::executor, *pause);
    co_await timer.async_wait();
    co_return Result<void>{};
}

}  // namespace nm
