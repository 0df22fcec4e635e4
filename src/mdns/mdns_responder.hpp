#pragma once
// The mDNS responder (RFC 6762) on the bridge: 224.0.0.251:5353, and [ff02::fb]:5353 when the
// bridge has IPv6. It answers only our own names (docs/names.md) for queries from app namespaces
// of this node, and never probes, announces or answers for anyone else's. A query from port 5353
// gets a multicast response, or a unicast one when every question it has an answer for carries
// the QU bit; a one-shot query from another port (dig -p 5353 @224.0.0.251) gets a unicast legacy
// response with its id and questions (RFC 6762 6.7). A query may ask several questions; they are
// answered in one response. Lives on shard 0.
#include <boost/asio/ip/udp.hpp>
#include <memory>
#include <optional>

#include "core/address.hpp"
#include "core/error.hpp"
#include "core/gate.hpp"
#include "core/shard.hpp"
#include "mdns/dns_stats.hpp"
#include "mdns/names_index.hpp"
#include "mdns/rate_limiter.hpp"

namespace nm {

struct MdnsOptions {
    Ipv4 address;        // the bridge address (multicast leaves from it)
    std::string device;  // the bridge
    Cidr clients;        // the node subnet
    // The node's IPv6 subnet when the bridge has one: also ff02::fb, answering sources in it or
    // link-local ones (the bridge's link is the app namespaces').
    std::optional<Cidr6> clients_v6;
    uint16_t port = 5353;
    uint32_t ttl = 5;
    unsigned rate_limit = 500;
};

class MdnsResponder {
  public:
    static Result<std::unique_ptr<MdnsResponder>> open(asio::io_context& io, MdnsOptions options,
                                                       const NamesIndex& index, DnsStats& stats);
    ~MdnsResponder();
    void start();
    // Closes the sockets: the loops end.
    void stop();
    // stop() and awaits the loops' end; then the responder may be destroyed.
    awaitable<void> close();
    bool has_ipv6() const { return socket6_.is_open(); }

  private:
    MdnsResponder(asio::io_context& io, MdnsOptions options, const NamesIndex& index,
                  DnsStats& stats);
    Result<void> open_v6();
    awaitable<void> loop(asio::ip::udp::socket& socket);
    void handle(asio::ip::udp::socket& socket, std::span<const uint8_t> message,
                const asio::ip::udp::endpoint& from);
    bool is_client(const asio::ip::address& source) const;

    asio::io_context& io_;
    MdnsOptions options_;
    const NamesIndex& index_;
    DnsStats& stats_;
    asio::ip::udp::socket socket_;
    asio::ip::udp::socket socket6_;
    unsigned ifindex_ = 0;
    RateLimiter limiter_;
    Gate gate_;
};

}  // namespace nm
