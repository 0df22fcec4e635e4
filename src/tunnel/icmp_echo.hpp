#pragma once
// ICMP echo to peer nodes, for round-trip probes: an unprivileged ping socket (SOCK_DGRAM,
// IPPROTO_ICMP; the kernel picks the identifier and hands us only our replies) where
// net.ipv4.ping_group_range allows it, else a raw ICMP socket (root) that sees every echo
// reply and keeps those with its own identifier. Opened in the agent's network namespace.
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <chrono>
#include <cstdint>
#include <optional>

#include "core/address.hpp"
#include "core/error.hpp"
#include "core/shard.hpp"

namespace nm {

struct EchoReply {
    Ipv4 from;
    uint16_t sequence = 0;
    // When the kernel received it (SO_TIMESTAMPNS): a late wake-up of ours adds nothing.
    std::chrono::system_clock::time_point received;
};

class IcmpEcho {
  public:
    static Result<IcmpEcho> open(boost::asio::io_context& context);

    // Sends one echo request (its payload an 8-byte token of this socket); answers the time
    // it went, on the clock of EchoReply::received.
    Result<std::chrono::system_clock::time_point> send(Ipv4 to, uint16_t sequence);
    // The next echo reply to one of our requests (waits for one).
    awaitable<Result<EchoReply>> receive();
    void close();
    // "ping" or "raw".
    const char* kind() const { return raw_ ? "raw" : "ping"; }

    // Parses a received datagram (with the IPv4 header on a raw socket); none if it is not an
    // echo reply carrying `token` (and, on a raw socket, `identifier`).
    static std::optional<uint16_t> parse_reply(const uint8_t* data, size_t size, bool raw,
                                               uint16_t identifier, uint64_t token);

  private:
    IcmpEcho(boost::asio::io_context& context, int fd, bool raw, uint16_t identifier,
             uint64_t token);
    boost::asio::posix::stream_descriptor descriptor_;
    bool raw_ = false;
    uint16_t identifier_ = 0;
    uint64_t token_ = 0;
};

}  // namespace nm
