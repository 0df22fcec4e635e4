#include "mdns/udp_receive.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace nm {

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
