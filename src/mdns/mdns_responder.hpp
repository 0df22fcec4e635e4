#pragma once
// The mDNS responder (RFC 6762) on the bridge: 224.0.0.251:5353. It answers only our own names
// (docs/names.md) for queries from app namespaces of this node, and never probes, announces or
// answers for anyone else's. A query from port 5353 gets a multicast response, or a unicast one
// when its QU bit is set; a one-shot query from another port (dig -p 5353 @224.0.0.251) gets a
// unicast legacy response with its id and question (RFC 6762 6.7). Lives on shard 0.
#include <boost/asio/ip/udp.hpp>
#include <memory>

#include "core/address.hpp"
#include "core/error.hpp"
#include "core/shard.hpp"
#include "mdns/dns_stats.hpp"
#include "mdns/names_index.hpp"
#include "mdns/rate_limiter.hpp"

namespace nm {

struct MdnsOptions {
    Ipv4 address;        // the bridge address (multicast leaves from it)
    std::string device;  // the bridge
    Cidr clients;        // the node subnet
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
    void stop();

  private:
    MdnsResponder(asio::io_context& io, MdnsOptions options, const NamesIndex& index,
                  DnsStats& stats);
    awaitable<void> loop();
    void handle(std::span<const uint8_t> message, const asio::ip::udp::endpoint& from);

    asio::io_context& io_;
    MdnsOptions options_;
    const NamesIndex& index_;
    DnsStats& stats_;
    asio::ip::udp::socket socket_;
    RateLimiter limiter_;
    bool stopped_ = false;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace nm
