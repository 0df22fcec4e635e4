#pragma once
// The unicast DNS server on the bridge address, UDP and TCP (docs/names.md). It answers only
// app namespaces of this node (sources in the node's subnet, arriving on the bridge): our .local
// names from the NameAnswerer, every other name forwarded to the node's upstream resolvers as a
// container engine's embedded DNS does. Never an open resolver. Malformed queries are dropped
// and counted by reason; each source has a rate limit; forwarding has a timeout and a cap on
// queries in flight. Lives on shard 0.
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/address.hpp"
#include "core/config.hpp"
#include "core/error.hpp"
#include "core/gate.hpp"
#include "core/shard.hpp"
#include "mdns/dns_stats.hpp"
#include "mdns/name_answerer.hpp"
#include "mdns/rate_limiter.hpp"

namespace nm {

struct DnsServerOptions {
    Ipv4 address;                             // the bridge address
    uint16_t port = 53;                       // 0: an ephemeral port (tests)
    std::string device;                       // the bridge: queries arriving elsewhere are not ours
    Cidr clients;                             // the node subnet: only these sources are answered
    std::vector<DnsServerAddress> upstreams;  // empty: other names get SERVFAIL
    std::chrono::milliseconds forward_timeout{2000};  // per upstream tried
    size_t max_forwards = 512;                        // in flight; more get SERVFAIL
    unsigned rate_limit = 500;                        // per source per second, 0: none
    size_t max_tcp = 64;                              // connections open at once
    std::chrono::milliseconds tcp_idle{10000};
};

class DnsServer {
  public:
    // Binds UDP and TCP (Errc::system naming the address when the port is taken).
    static Result<std::unique_ptr<DnsServer>> open(asio::io_context& io, DnsServerOptions options,
                                                   NameAnswerer& names, DnsStats& stats);
    ~DnsServer();
    DnsServer(const DnsServer&) = delete;
    DnsServer& operator=(const DnsServer&) = delete;

    void start();
    // Closes the sockets and wakes waiting forwards; the coroutines end as the loop runs on, so
    // the server must stay until then (or until close() is awaited).
    void stop();
    // stop() and awaits the end of every coroutine; then the server may be destroyed.
    awaitable<void> close();
    uint16_t port() const { return port_; }
    size_t forwards_in_flight() const { return forwards_.size(); }

  private:
    struct Forward;
    DnsServer(asio::io_context& io, DnsServerOptions options, NameAnswerer& names, DnsStats& stats);
    awaitable<void> udp_loop();
    // Answers a query whose answer must be awaited in a coroutine of its own; the reply goes to
    // `client` over UDP.
    void answer_later(std::span<const uint8_t> message, DnsQuery query,
                      const asio::ip::udp::endpoint& client);
    awaitable<void> upstream_loop();
    awaitable<void> tcp_accept_loop();
    awaitable<void> tcp_session(asio::ip::tcp::socket socket);
    // The reply to one message, awaiting a lookup or an upstream when needed; empty: drop.
    awaitable<std::vector<uint8_t>> answer_async(std::vector<uint8_t> message, DnsQuery query);
    awaitable<std::vector<uint8_t>> forward(std::vector<uint8_t> message);
    // Checks, parses and answers what can be answered at once. `query` is set when the answer
    // must be awaited (answer_async).
    enum class Step { reply, drop, wait };
    Step first_step(std::span<const uint8_t> message, Ipv4 source, std::vector<uint8_t>& reply,
                    DnsQuery& query);

    asio::io_context& io_;
    DnsServerOptions options_;
    NameAnswerer& names_;
    DnsStats& stats_;
    asio::ip::udp::socket udp_;
    asio::ip::udp::socket upstream_;
    asio::ip::tcp::acceptor tcp_;
    uint16_t port_ = 0;
    RateLimiter limiter_;
    std::unordered_map<uint16_t, std::shared_ptr<Forward>> forwards_;  // by upstream query id
    uint16_t next_id_;
    std::unordered_set<asio::ip::tcp::socket*> sessions_;  // open TCP connections

    bool stopped_ = false;
    Gate gate_;  // held by every coroutine of the server
};

}  // namespace nm
