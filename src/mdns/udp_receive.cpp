#include "mdns/udp_receive.hpp"

#include <sys/socket.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>

namespace nm {

Result<void> bind_to_device(int fd, const std::string& device) {
    if (device.empty()) return {};
    if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, device.c_str(),
                   static_cast<socklen_t>(device.size())) != 0)
        return fail_errno("SO_BINDTODEVICE " + device, errno);
    return {};
}

awaitable<std::optional<size_t>> receive_datagram(asio::ip::udp::socket& socket,
                                                  asio::mutable_buffer buffer,
                                                  asio::ip::udp::endpoint& from) {
    for (;;) {
        boost::system::error_code ec;
        size_t n = co_await socket.async_receive_from(
            buffer, from, asio::redirect_error(asio::use_awaitable, ec));
        if (!ec) co_return n;
        if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor ||
            !socket.is_open())
            co_return std::nullopt;
    }
}

}  // namespace nm
