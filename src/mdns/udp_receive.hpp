#pragma once
// The receive step of the names sockets' loops.
#include <boost/asio/ip/udp.hpp>
#include <optional>

#include "core/shard.hpp"

namespace nm {

// Waits for the next datagram on `socket` into `buffer`; its length, or nullopt once the
// socket is closed (the loop should end). Transient errors (ICMP errors reported on the socket)
// are skipped.
awaitable<std::optional<size_t>> receive_datagram(asio::ip::udp::socket& socket,
                                                  asio::mutable_buffer buffer,
                                                  asio::ip::udp::endpoint& from);

}  // namespace nm
