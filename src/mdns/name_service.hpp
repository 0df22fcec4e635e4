#pragma once
// Service names for the node's app namespaces (docs/names.md): the names index kept from the
// table, the unicast DNS server and the mDNS responder on the bridge, and the nftables redirect
// that brings every port-53 query of an app namespace to the server. The Node holds one of these
// from the moment its network is built; it lives on shard 0.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/metrics_text.hpp"
#include "core/shard.hpp"
#include "mdns/dns_server.hpp"
#include "mdns/dns_stats.hpp"
#include "mdns/mdns_responder.hpp"
#include "mdns/name_answerer.hpp"
#include "mdns/names_index.hpp"

namespace nm {

class TableWriter;

struct NameServiceOptions {
    DnsServerOptions dns;  // address, port, device, clients, upstreams, limits
    NameOptions names;
    bool mdns = true;
    std::optional<Cidr6> subnet_v6;  // the node's IPv6 subnet when the bridge has one: mDNS on it
    // The nft table (family ip) the redirect of port 53 goes into, as its own chain; empty: none.
    std::string nft_table;
    std::vector<Cidr> not_redirected;  // destinations whose port 53 stays theirs (ServiceIPs)
    // From the agent's config: port, upstreams (else the node's resolv.conf), rate limit.
    static NameServiceOptions from(const Config& config, Ipv4 bridge_address, Cidr subnet,
                                   std::string nft_table);
};

class NameService {
  public:
    // Opens the sockets, installs the redirect and subscribes to `table`'s changes. Call on shard
    // 0; `table` must outlive the service.
    static Result<std::unique_ptr<NameService>> start(asio::io_context& io, TableWriter& table,
                                                      FindJob find_job, NameServiceOptions options);
    ~NameService();
    // Closes the sockets, wakes waiting queries and removes the redirect. The service must stay
    // until its coroutines have seen it (the shard's loop ran on, or close() was awaited).
    void stop();
    // stop() and awaits the end of the coroutines; then the service may be destroyed.
    awaitable<void> close();

    const NamesIndex& index() const { return index_; }
    const DnsStats& stats() const { return stats_; }
    uint16_t dns_port() const { return server_ ? server_->port() : 0; }
    // netmanager_dns_* in Prometheus text format.
    void append_metrics(MetricsText& m) const;

  private:
    NameService(TableWriter& table, FindJob find_job, NameServiceOptions options);

    TableWriter& table_;
    NameServiceOptions options_;
    NamesIndex index_;
    DnsStats stats_;
    NameAnswerer answerer_;
    std::unique_ptr<DnsServer> server_;
    std::unique_ptr<MdnsResponder> mdns_;
    size_t subscription_ = 0;
    bool subscribed_ = false, redirected_ = false;
};

}  // namespace nm
