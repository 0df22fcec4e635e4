#include "core/retry.hpp"

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

}  // namespace nm
