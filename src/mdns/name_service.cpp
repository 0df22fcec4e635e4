#include "mdns/name_service.hpp"

#include "core/log.hpp"
#include "env/firewall.hpp"
#include "mdns/resolv_conf.hpp"
#include "table/table_writer.hpp"

namespace nm {

namespace {
constexpr std::string_view subsystem = "names";
constexpr std::string_view redirect_chain = "names_redirect";

// Port-53 queries of the app namespaces go to the agent, whatever server they name: those to
// the agent's own address, and those leaving the node (not to ServiceIPs or namespaces: a DNS
// service deployed as a job stays reachable).
std::string redirect_script(const NameServiceOptions& o) {
    const auto& d = o.dns;
    std::string keep;
    for (size_t i = 0; i < o.not_redirected.size(); ++i)
        keep += (i ? ", " : "") + o.not_redirected[i].to_string();
    const std::string chain = "ip " + o.nft_table + " " + std::string(redirect_chain);
    const std::string match =
        "add rule " + chain + " iifname \"" + d.device + "\" ip saddr " + d.clients.to_string();
    // The destinations redirected: the agent's own address, and all but `keep` (all when empty).
    const std::string to_agent = " ip daddr " + d.address.to_string();
    const std::string leaving = keep.empty() ? std::string() : " ip daddr != { " + keep + " }";
    const std::string dnat =
        " dport 53 dnat ip to " + d.address.to_string() + ":" + std::to_string(d.port) + "\n";
    std::string s = "add chain " + chain +
                    " { type nat hook prerouting priority dstnat - 5; policy accept; }\n";
    for (std::string_view proto : {"udp", "tcp"})
        for (const std::string* destination : {&to_agent, &leaving})
            s.append(match).append(*destination).append(" ").append(proto).append(dnat);
    return s;
}

}  // namespace

NameServiceOptions NameServiceOptions::from(const Config& config, Ipv4 bridge_address, Cidr subnet,
                                            std::string nft_table) {
    NameServiceOptions o;
    o.dns.address = bridge_address;
    o.dns.port = config.dns_port;
    o.dns.device = config.bridge;
    o.dns.clients = subnet;
    o.dns.upstreams =
        config.dns_upstream.empty() ? nameservers_of("/etc/resolv.conf") : config.dns_upstream;
    o.dns.rate_limit = config.dns_rate_limit;
    o.nft_table = std::move(nft_table);
    o.not_redirected = {config.networks.service_network, config.networks.container_network};
    return o;
}

NameService::NameService(TableWriter& table, FindJob find_job, NameServiceOptions options)
    : table_(table),
      options_(std::move(options)),
      answerer_(index_, std::move(find_job), options_.names, stats_) {}

NameService::~NameService() {
    stop();
}

Result<std::unique_ptr<NameService>> NameService::start(asio::io_context& io, TableWriter& table,
                                                        FindJob find_job,
                                                        NameServiceOptions options) {
    std::unique_ptr<NameService> s(new NameService(table, std::move(find_job), std::move(options)));
    s->index_.rebuild(table.table());
    NameService* self = s.get();
    s->subscription_ =
        table.subscribe([self](const TableChange& change, const TranslationTable& t) {
            self->index_.apply(change, t);
            self->answerer_.table_changed();
        });
    s->subscribed_ = true;
    auto server = DnsServer::open(io, s->options_.dns, s->answerer_, s->stats_);
    if (!server) return tl::unexpected(server.error());
    s->server_ = std::move(*server);
    // The redirect names the port actually bound.
    s->options_.dns.port = s->server_->port();
    if (!s->options_.nft_table.empty()) {
        if (auto r = run_nft(redirect_script(s->options_)); !r)
            return fail(r.error().code, "DNS redirect: " + r.error().message);
        s->redirected_ = true;
    }
    s->server_->start();
    if (s->options_.mdns) {
        MdnsOptions m;
        m.address = s->options_.dns.address;
        m.device = s->options_.dns.device;
        m.clients = s->options_.dns.clients;
        m.ttl = s->options_.names.ttl;
        m.rate_limit = s->options_.dns.rate_limit;
        m.clients_v6 = s->options_.subnet_v6;
        auto mdns = MdnsResponder::open(io, m, s->index_, s->stats_);
        if (mdns) {
            s->mdns_ = std::move(*mdns);
            s->mdns_->start();
        } else {
            NM_LOG(warn, subsystem) << mdns.error().message << "; no mDNS on the bridge";
        }
    }
    std::string upstreams;
    for (auto& u : s->options_.dns.upstreams)
        upstreams +=
            (upstreams.empty() ? "" : ", ") + u.ip.to_string() + ":" + std::to_string(u.port);
    NM_LOG(info, subsystem) << "DNS on " << s->options_.dns.address.to_string() << ":"
                            << s->server_->port() << " (UDP, TCP)"
                            << (s->mdns_ ? ", mDNS on 224.0.0.251:5353" : "")
                            << (s->mdns_ && s->mdns_->has_ipv6() ? " and [ff02::fb]:5353" : "")
                            << ", upstream: " << (upstreams.empty() ? "none" : upstreams);
    return s;
}

void NameService::stop() {
    answerer_.stop();
    if (server_) server_->stop();
    if (mdns_) mdns_->stop();
    if (subscribed_) {
        table_.unsubscribe(subscription_);
        subscribed_ = false;
    }
    if (redirected_) {
        // Gone with the agent's table anyway; removed here when the service stops alone.
        (void)run_nft("delete chain ip " + options_.nft_table + " " + std::string(redirect_chain));
        redirected_ = false;
    }
}

awaitable<void> NameService::close() {
    stop();
    if (server_) co_await server_->close();
    co_await answerer_.close();
    if (mdns_) co_await mdns_->close();
}

void NameService::append_metrics(MetricsText& m) const {
    auto counter = [&](std::string_view name, std::string_view help, uint64_t v) {
        m.single("netmanager_dns_" + std::string(name), "counter", help, static_cast<double>(v));
    };
    m.family("netmanager_dns_queries_total", "counter", "DNS queries received, by transport.")
        .samples("netmanager_dns_queries_total",
                 {{"transport=\"udp\"", static_cast<double>(stats_.queries_udp)},
                  {"transport=\"tcp\"", static_cast<double>(stats_.queries_tcp)},
                  {"transport=\"mdns\"", static_cast<double>(stats_.mdns_queries)}});
    counter("answered_total", ".local names answered with their addresses.", stats_.answered);
    counter("nxdomain_total", ".local names answered NXDOMAIN.", stats_.nxdomain);
    counter("forwarded_total", "Other names forwarded to the upstream resolvers.",
            stats_.forwarded);
    counter("forward_answers_total", "Upstream answers relayed.", stats_.forward_answers);
    counter("forward_timeouts_total", "Forwarded queries no upstream answered in time.",
            stats_.forward_timeouts);
    counter("lookups_total", "Table queries by name for jobs the table did not have.",
            stats_.lookups);
    counter("lookups_coalesced_total", "Queries that joined a lookup already in flight.",
            stats_.lookup_coalesced);
    counter("lookup_failures_total", "Lookups that failed (answered SERVFAIL).",
            stats_.lookup_failures);
    counter("negative_hits_total", "NXDOMAIN answered from the negative cache.",
            stats_.negative_hits);
    counter("reply_cache_hits_total", "Queries answered from the reply cache.",
            stats_.reply_cache_hits);
    counter("mdns_answers_total", "mDNS responses sent.", stats_.mdns_answers);
    m.family("netmanager_dns_dropped_total", "counter",
             "Queries dropped without an answer, by reason.");
    for (size_t r = 0; r < dns_drop_count; ++r)
        m.sample("netmanager_dns_dropped_total", static_cast<double>(stats_.dropped[r]),
                 "reason=\"" + std::string(to_string(static_cast<DnsDrop>(r))) + "\"");
    m.single("netmanager_dns_names", "gauge", "Jobs with names in the names index.",
             static_cast<double>(index_.size()));
}

}  // namespace nm
