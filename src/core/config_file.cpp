// Config keys from the reference's JSON files and from environment variables named like them.
#include <arpa/inet.h>
#include <strings.h>

#include <boost/json.hpp>
#include <deque>
#include <fstream>
#include <sstream>

#include "core/config.hpp"
#include "core/parse.hpp"

namespace nm {
namespace json = boost::json;

namespace {

// Reads one known key if its source has it; the first unusable value is kept as the error.
// `lookup` finds a key's value (a file's JSON, or the environment as strings).
class FieldReader {
  public:
    using Lookup = std::function<const json::value*(std::string_view name)>;
    FieldReader(Lookup lookup, std::string where, bool text_only)
        : lookup_(std::move(lookup)), where_(std::move(where)), text_only_(text_only) {}

    template <class Apply>
    void string(std::string_view name, Apply apply) {
        const json::value* v = find(name);
        if (!v) return;
        if (!v->is_string()) return set(name, "expected a string");
        auto text = std::string(v->as_string());
        if (auto r = apply(text); !r) set(name, r.error().message);
    }

    template <class Int>
    void integer(std::string_view name, Int& out, int64_t lo, int64_t hi) {
        const json::value* v = find(name);
        if (!v) return;
        int64_t n = 0;
        if (v->is_int64())
            n = v->as_int64();
        else if (v->is_uint64() && v->as_uint64() <= INT64_MAX)
            n = static_cast<int64_t>(v->as_uint64());
        else if (v->is_string()) {  // the reference files quote some numbers ("50103")
            auto s = v->as_string();
            auto parsed = parse_whole<int64_t>(s);
            if (!parsed) return set(name, "expected an integer, got \"" + std::string(s) + "\"");
            n = *parsed;
        } else
            return set(name, "expected an integer");
        if (n < lo || n > hi)
            return set(name, "must be between " + std::to_string(lo) + " and " +
                                 std::to_string(hi) + ", got " + std::to_string(n));
        out = static_cast<Int>(n);
    }

    void boolean(std::string_view name, bool& out) {
        const json::value* v = find(name);
        if (!v) return;
        if (v->is_bool()) {
            out = v->as_bool();
            return;
        }
        if (text_only_ && v->is_string()) {  // as Go's strconv.ParseBool spells them
            std::string_view s = v->as_string();
            for (auto t : {"1", "t", "T", "TRUE", "true", "True"})
                if (s == t) return void(out = true);
            for (auto f : {"0", "f", "F", "FALSE", "false", "False"})
                if (s == f) return void(out = false);
        }
        set(name, "expected true or false");
    }

    const std::optional<Error>& error() const { return error_; }

  private:
    const json::value* find(std::string_view name) const {
        if (error_) return nullptr;
        return lookup_(name);
    }
    void set(std::string_view name, const std::string& what) {
        error_ =
            Error{Errc::invalid_argument, where_ + ": " + (text_only_ ? "variable '" : "field '") +
                                              std::string(name) + "': " + what};
    }
    Lookup lookup_;
    std::string where_;
    bool text_only_;
    std::optional<Error> error_;
};

Result<void> check_ifname(const std::string& t) {
    if (t.empty() || t.size() > 15)
        return fail(Errc::invalid_argument, "interface names have 1 to 15 characters");
    return {};
}

Result<void> check_ipv6(const std::string& t) {
    in6_addr a{};
    if (inet_pton(AF_INET6, t.c_str(), &a) != 1)
        return fail(Errc::invalid_argument, "not an IPv6 address: '" + t + "'");
    return {};
}

// Every key we know, read from r into next. The order matters for ProxySubnetworkMask, which
// applies to the ProxySubnetwork read before it, and Subnetwork, whose bare address takes the
// SubnetworkPrefix read before it.
void read_keys(FieldReader& r, Config& next) {
    auto ipv4 = [](Ipv4& out) {
        return [&out](const std::string& t) -> Result<void> {
            auto ip = Ipv4::parse(t);
            if (!ip) return tl::unexpected(ip.error());
            out = *ip;
            return {};
        };
    };
    auto ipv6_text = [](std::string& out) {
        return [&out](const std::string& t) -> Result<void> {
            if (auto ok = check_ipv6(t); !ok) return ok;
            out = t;
            return {};
        };
    };
    // ContainerNetworkIPv6 and ServiceNetworkIPv6 (protocol.md: namespaces in fc00::/7,
    // ServiceIPs in fdff::/16): a network written as its base, inside the unique-local fc00::/7
    // (anything else would route real addresses into the TUN), wide enough for a node's /120.
    auto network6 = [](Cidr6& out) {
        return [&out](const std::string& t) -> Result<void> {
            auto c = Cidr6::parse(t);
            if (!c) return tl::unexpected(c.error());
            if (c->network != c->host(0))
                return fail(Errc::invalid_argument,
                            "'" + t + "' has address bits past its prefix (its network is " +
                                c->host(0).to_string() + "/" + std::to_string(c->prefix) + ")");
            const Cidr6& unique_local = default_container_network_v6;
            if (c->prefix < unique_local.prefix || !unique_local.contains(c->network))
                return fail(Errc::invalid_argument,
                            "'" + t + "' is not inside fc00::/7 (unique local addresses)");
            if (c->prefix > 120)
                return fail(Errc::invalid_argument, "'" + t + "' is narrower than a node's /120");
            out = *c;
            return {};
        };
    };
    auto into = [](std::string& out) {
        return [&out](const std::string& t) -> Result<void> {
            out = t;
            return {};
        };
    };
    auto ifname = [](std::string& out) {
        return [&out](const std::string& t) -> Result<void> {
            if (auto ok = check_ifname(t); !ok) return ok;
            out = t;
            return {};
        };
    };
    // netcfg.json
    r.string("NodePublicAddress", [&](const std::string& t) -> Result<void> {
        if (auto ip = Ipv4::parse(t); !ip) return tl::unexpected(ip.error());
        next.node_public_address = t;
        return {};
    });
    r.integer("NodePublicPort", next.node_public_port, 1, 65535);
    r.string("ClusterUrl", into(next.cluster_url));
    r.integer("ClusterMqttPort", next.cluster_mqtt_port, 1, 65535);
    r.string("DefaultInterface", into(next.default_interface));
    r.boolean("Debug", next.debug);
    r.boolean("PublicIPNetworking", next.public_ip_networking);
    r.string("MqttCert", into(next.mqtt_cert));
    r.string("MqttKey", into(next.mqtt_key));
    r.string("MqttCa", into(next.mqtt_ca));
    r.string("NodeID", into(next.node_id));

    // tuncfg.json
    r.string("HostTunnelDeviceName", ifname(next.tun_device));
    r.string("TunnelIP", ipv4(next.tunnel_ip));
    r.string("ProxySubnetwork", ipv4(next.networks.service_network.network));
    r.string("ProxySubnetworkMask", [&](const std::string& t) -> Result<void> {
        auto c = Cidr::from_mask(next.networks.service_network.network.to_string(), t);
        if (!c) return tl::unexpected(c.error());
        next.networks.service_network = *c;
        return {};
    });
    r.integer("TunnelPort", next.tunnel_port, 1, 65535);
    r.integer("MTUsize", next.mtu, 576, 65535);
    r.string("TunNetIPv6", [&](const std::string& t) -> Result<void> {
        auto ip = Ipv6::parse(t);
        if (!ip) return tl::unexpected(ip.error());
        next.tun_ipv6 = *ip;
        return {};
    });
    r.string("ProxySubnetworkIPv6", ipv6_text(next.proxy_network_v6));
    r.integer("ProxySubnetworkIPv6Prefix", next.proxy_network_v6_prefix, 1, 128);

    // Ours
    r.boolean("Offload", next.offload);
    r.string("IoMode", [&](const std::string& t) -> Result<void> {
        auto mode = parse_name(t, io_mode_names);
        if (!mode) return fail(Errc::invalid_argument, "expected \"readiness\" or \"uring\"");
        next.io = *mode;
        return {};
    });
    r.string("Datapath", [&](const std::string& t) -> Result<void> {
        auto datapath = parse_name(t, datapath_names);
        if (!datapath) return fail(Errc::invalid_argument, "expected \"auto\" or \"userspace\"");
        next.datapath = *datapath;
        return {};
    });
    r.integer("ApiMaxConnections", next.api_max_connections, 1, 65536);
    r.integer("ApiIdleTimeoutMs", next.api_idle_timeout_ms, 100, 3600000);
    r.integer("ApiPort", next.api_port, 1, 65535);
    r.string("ApiAddress", [&](const std::string& t) -> Result<void> {
        if (!is_ip_literal(t)) return fail(Errc::invalid_argument, "not an IPv4 or IPv6 address");
        next.api_address = t;
        return {};
    });
    r.string("ApiTokenFile", [&](const std::string& t) -> Result<void> {
        next.api_token_file = t;
        return {};
    });
    r.integer("RttProbeIntervalMs", next.rtt_probe_interval_ms, 0, 3600000);
    r.string("BridgeName", ifname(next.bridge));
    r.integer("SubnetworkPrefix", next.subnet_prefix, 8, 30);
    r.integer("SubnetworkPrefixIPv6", next.subnet_prefix_v6, 64, 126);
    r.string("Subnetwork", [&](const std::string& t) -> Result<void> {
        auto c = Cidr::parse(
            t.find('/') == std::string::npos ? t + "/" + std::to_string(next.subnet_prefix) : t);
        if (!c) return tl::unexpected(c.error());
        next.subnet = *c;
        return {};
    });
    r.string("SubnetworkIPv6", [&](const std::string& t) -> Result<void> {
        auto c = Cidr6::parse(
            t.find('/') == std::string::npos ? t + "/" + std::to_string(next.subnet_prefix_v6) : t);
        if (!c) return tl::unexpected(c.error());
        next.subnet_v6 = *c;
        return {};
    });
    r.string("ServiceNetworkIPv6", network6(next.networks.service_network_v6));
    r.string("ContainerNetworkIPv6", network6(next.networks.container_network_v6));
    r.string("ContainerNetwork", [&](const std::string& t) -> Result<void> {
        auto c = Cidr::parse(t);
        if (!c) return tl::unexpected(c.error());
        next.networks.container_network = *c;
        next.container_network_given = true;
        return {};
    });
    r.string("TableFile", into(next.table_file));
    r.integer("DnsPort", next.dns_port, 0, 65535);
    r.integer("DnsRateLimit", next.dns_rate_limit, 0, 10000000);
    r.string("DnsUpstream", [&](const std::string& t) -> Result<void> {
        auto servers = parse_dns_servers(t);
        if (!servers) return tl::unexpected(servers.error());
        next.dns_upstream = std::move(*servers);
        return {};
    });
}

}  // namespace

Result<void> apply_config_file(Config& cfg, const std::string& path) {
    std::ifstream in(path);
    if (!in) return fail(Errc::not_found, path + ": cannot open file");
    std::stringstream text;
    text << in.rdbuf();
    boost::system::error_code ec;
    json::value doc = json::parse(text.str(), ec);
    if (ec) return fail(Errc::invalid_argument, path + ": not valid JSON: " + ec.message());
    if (!doc.is_object()) return fail(Errc::invalid_argument, path + ": expected a JSON object");
    const auto& obj = doc.as_object();

    Config next = cfg;  // a bad file changes nothing
    FieldReader r(
        [&obj](std::string_view name) -> const json::value* {
            if (auto* exact = obj.if_contains(name)) return exact;
            for (const auto& kv : obj)
                if (kv.key().size() == name.size() &&
                    strncasecmp(kv.key().data(), name.data(), name.size()) == 0)
                    return &kv.value();
            return nullptr;
        },
        path, false);
    read_keys(r, next);
    if (r.error()) return tl::unexpected(*r.error());
    if (next.debug) next.log_level = LogLevel::debug;
    next.config_files.push_back(path);
    cfg = std::move(next);
    return {};
}

Result<void> apply_environment(Config& cfg, const EnvLookup& getenv) {
    Config next = cfg;
    std::deque<json::value> seen;  // stable addresses for the reader
    FieldReader r(
        [&](std::string_view name) -> const json::value* {
            const char* v = getenv(std::string(name).c_str());
            if (!v || !*v) return nullptr;
            return &seen.emplace_back(json::string(v));
        },
        "environment", true);
    read_keys(r, next);
    if (r.error()) return tl::unexpected(*r.error());
    if (const char* v = getenv("TUN_MTU_SIZE"); v && *v) {
        auto n = parse_whole<unsigned>(v);
        if (!n || *n < 576 || *n > 65535)
            return fail(Errc::invalid_argument,
                        "environment: variable 'TUN_MTU_SIZE': expected an MTU from 576 to "
                        "65535, got \"" +
                            std::string(v) + "\"");
        next.bridge_mtu = *n;
    }
    if (next.debug) next.log_level = LogLevel::debug;
    cfg = std::move(next);
    return {};
}

Result<std::vector<DnsServerAddress>> parse_dns_servers(std::string_view text) {
    std::vector<DnsServerAddress> out;
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find_first_of(", ", start);
        if (end == std::string_view::npos) end = text.size();
        std::string_view item = text.substr(start, end - start);
        start = end + 1;
        if (item.empty()) continue;
        DnsServerAddress server;
        std::string_view host = item;
        if (auto colon = item.find(':'); colon != std::string_view::npos) {
            host = item.substr(0, colon);
            auto port = parse_whole<uint16_t>(item.substr(colon + 1));
            if (!port || *port == 0)
                return fail(Errc::invalid_argument,
                            "bad port in DNS server \"" + excerpt(item) + "\"");
            server.port = *port;
        }
        auto ip = Ipv4::parse(host);
        if (!ip)
            return fail(Errc::invalid_argument,
                        "DNS server \"" + excerpt(item) + "\" is not an IPv4 address[:port]");
        server.ip = *ip;
        out.push_back(server);
    }
    if (out.empty()) return fail(Errc::invalid_argument, "no DNS server given");
    return out;
}

Result<void> check_networks_v6(const Config& cfg) {
    if (!cfg.subnet_v6) return {};
    const Cidr6& subnet = *cfg.subnet_v6;
    const Cidr6& containers = cfg.networks.container_network_v6;
    const Cidr6& services = cfg.networks.service_network_v6;
    if (subnet.prefix < containers.prefix || !containers.contains(subnet.network))
        return fail(Errc::invalid_argument, "the IPv6 subnet " + subnet.to_string() +
                                                " is not inside the container network " +
                                                containers.to_string() + " (ContainerNetworkIPv6)");
    if (services.contains(subnet.network) || subnet.contains(services.network))
        return fail(Errc::invalid_argument, "the IPv6 subnet " + subnet.to_string() +
                                                " overlaps the service network " +
                                                services.to_string() + " (ServiceNetworkIPv6)");
    return {};
}

void resolve_derived(Config& cfg) {
    if (cfg.container_network_given) return;
    Cidr c{cfg.tunnel_ip, container_network_prefix};
    cfg.networks.container_network = Cidr{c.host(0), container_network_prefix};
}

}  // namespace nm
