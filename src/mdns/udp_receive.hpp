#pragma once
// The names sockets' shared steps: binding one to the bridge, and the receive step of their
// loops.
#include <boost/asio/ip/udp.hpp>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "core/shard.hpp"

namespace nm {

// SO_BINDTODEVICE: the socket hears only `device` (nothing to do when it is empty).
Result<void> bind_to_device(int fd, const std::string& device);

// Waits for the next datagram on `socket` into `buffer`; its length, or nullopt once the
// socket is closed (the loop should end). Transient errors (ICMP errors reported on the socket)
// are skipped.
awaitable<std::optional<size_t>> receive_datagram(asio::ip::udp::socket& socket,
                                                  asio::mutable_buffer buffer,
                                                  asio::ip::udp::endpoint& from);

}  // namespace nm
