#include "core/config.hpp"

#include <boost/json.hpp>
#include <fstream>
#include <sstream>

#include "core/parse.hpp"

namespace nm {
namespace json = boost::json;

namespace {

Error field_error(const std::string& where, std::string_view field, const std::string& what) {
    return Error{Errc::invalid_argument, where + ": field '" + std::string(field) + "': " + what};
}

// Reads one known field if present; false + error when its value is unusable.
class FieldReader {
  public:
    FieldReader(const json::object& obj, std::string where) : obj_(obj), where_(std::move(where)) {}

    template <class Apply>
    void string(std::string_view name, Apply apply) {
        if (error_) return;
        auto* v = obj_.if_contains(name);
        if (!v) return;
        if (!v->is_string()) return set(name, "expected a string");
        auto text = std::string(v->as_string());
        if (auto r = apply(text); !r) set(name, r.error().message);
    }

    template <class Int>
    void integer(std::string_view name, Int& out, int64_t lo, int64_t hi) {
        if (error_) return;
        auto* v = obj_.if_contains(name);
        if (!v) return;
        int64_t n = 0;
        if (v->is_int64())
            n = v->as_int64();
        else if (v->is_uint64() && v->as_uint64() <= INT64_MAX)
            n = static_cast<int64_t>(v->as_uint64());
        else if (v->is_string()) {  // the reference files sometimes quote numbers
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
        if (error_) return;
        auto* v = obj_.if_contains(name);
        if (!v) return;
        if (!v->is_bool()) return set(name, "expected true or false");
        out = v->as_bool();
    }

    const std::optional<Error>& error() const { return error_; }

  private:
    void set(std::string_view name, const std::string& what) {
        error_ = field_error(where_, name, what);
    }
    const json::object& obj_;
    std::string where_;
    std::optional<Error> error_;
};

Result<void> keep(std::string& out, const std::string& text) {
    out = text;
    return {};
}

}  // namespace

Result<std::vector<unsigned>> parse_cpu_list(std::string_view text) {
    std::vector<unsigned> cpus;
    while (!text.empty()) {
        const auto comma = text.find(',');
        const auto item = text.substr(0, comma);
        auto cpu = parse_whole<unsigned>(item);
        if (!cpu || *cpu > 4095)
            return fail(Errc::invalid_argument,
                        "'" + std::string(item) + "' is not a core number (0-4095)");
        cpus.push_back(*cpu);
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
        if (text.empty()) return fail(Errc::invalid_argument, "the list ends with a comma");
    }
    if (cpus.empty()) return fail(Errc::invalid_argument, "an empty list of cores");
    return cpus;
}

bool parse_io_mode(std::string_view text, IoMode& out) {
    if (text == "readiness")
        out = IoMode::readiness;
    else if (text == "uring")
        out = IoMode::uring;
    else
        return false;
    return true;
}

const char* to_string(IoMode mode) {
    return mode == IoMode::uring ? "uring" : "readiness";
}

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
    FieldReader r(obj, path);
    auto ipv4 = [](Ipv4& out) {
        return [&out](const std::string& t) -> Result<void> {
            auto ip = Ipv4::parse(t);
            if (!ip) return tl::unexpected(ip.error());
            out = *ip;
            return {};
        };
    };
    auto into = [](std::string& out) {
        return [&out](const std::string& t) { return keep(out, t); };
    };
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
    r.string("MqttCert", into(next.mqtt_cert));
    r.string("MqttKey", into(next.mqtt_key));
    r.string("MqttCa", into(next.mqtt_ca));
    r.string("NodeID", into(next.node_id));

    r.string("HostTunnelDeviceName", [&](const std::string& t) -> Result<void> {
        if (t.empty() || t.size() > 15)
            return fail(Errc::invalid_argument, "interface names have 1 to 15 characters");
        next.tun_device = t;
        return {};
    });
    r.string("TunnelIP", ipv4(next.tunnel_ip));
    r.string("ProxySubnetwork", ipv4(next.service_network.network));
    r.string("ProxySubnetworkMask", [&](const std::string& t) -> Result<void> {
        auto c = Cidr::from_mask(next.service_network.network.to_string(), t);
        if (!c) return tl::unexpected(c.error());
        next.service_network = *c;
        return {};
    });
    r.integer("TunnelPort", next.tunnel_port, 1, 65535);
    r.integer("MTUsize", next.mtu, 576, 65535);
    r.boolean("Offload", next.offload);
    r.string("IoMode", [&](const std::string& t) -> Result<void> {
        if (!parse_io_mode(t, next.io))
            return fail(Errc::invalid_argument, "expected \"readiness\" or \"uring\"");
        return {};
    });

    r.string("BridgeName", [&](const std::string& t) -> Result<void> {
        if (t.empty() || t.size() > 15)
            return fail(Errc::invalid_argument, "interface names have 1 to 15 characters");
        next.bridge = t;
        return {};
    });
    r.string("Subnetwork", [&](const std::string& t) -> Result<void> {
        auto c = Cidr::parse(t.find('/') == std::string::npos ? t + "/24" : t);
        if (!c) return tl::unexpected(c.error());
        next.subnet = *c;
        return {};
    });
    r.string("ContainerNetwork", [&](const std::string& t) -> Result<void> {
        auto c = Cidr::parse(t);
        if (!c) return tl::unexpected(c.error());
        next.container_network = *c;
        return {};
    });
    r.string("TableFile", into(next.table_file));
    if (r.error()) return tl::unexpected(*r.error());
    if (next.debug) next.log_level = LogLevel::debug;
    next.config_files.push_back(path);
    cfg = std::move(next);
    return {};
}

std::string usage() {
    return R"(Usage: netmanager [options]

The node's network agent: container network, service translation table, and the
ServiceIP tunnel between nodes.

Options:
  -h, --help               show this help and exit
      --version            print the version and exit
  -c, --config FILE        read a JSON config file (netcfg.json / tuncfg.json field names);
                           may be given more than once, later files win
      --cluster IP         register with the cluster at IP (MQTT, port --mqtt-port)
      --mqtt-port N        cluster broker port (default 10003)
      --node-id ID         MQTT client id (default: hostname)
      --node-ip IP         this node's address for tunnel peers (default: default route's)
      --subnet CIDR        standalone: this node's subnet (e.g. 172.19.1.0/24)
      --table FILE         standalone: load the translation table from FILE (JSON)
      --shards N           shard threads (default: online cores)
      --cpus LIST          cores the shards are pinned to, in shard order, e.g. 2,3
                           (default: shard i on core i)
      --api-port N         serve the node API on TCP port N
      --api-socket PATH    serve the node API on a unix socket
      --tunnel-port N      UDP tunnel port (default 50103)
      --mtu N              MTU of veths and TUN (default 1450)
      --tun NAME           TUN device name (default goProxyTun)
      --bridge NAME        bridge name (default goProxyBridge)
      --prefix P           prefix of app namespaces and links this agent creates
      --netns NAME         enter network namespace /run/netns/NAME before starting
      --no-offload         disable TUN/UDP segmentation offloads
      --io MODE            tunnel I/O: readiness (epoll waits and readv/recvmmsg/sendmmsg
                           syscalls) or uring (batches on each shard's own io_uring)
                           (default readiness)
      --log-level LEVEL    debug, info, warn, error, off (default info)
)";
}

Result<Cli> parse_cli(int argc, const char* const* argv) {
    Cli cli;
    Config& c = cli.config;
    auto bad = [](std::string_view flag, const std::string& what) {
        return fail(Errc::invalid_argument, "flag " + std::string(flag) + ": " + what);
    };
    // Config files first, so flags override them wherever they stand.
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "-c" || a == "--config") {
            if (i + 1 >= argc) return bad(a, "needs a value");
            if (auto r = apply_config_file(c, argv[++i]); !r) return tl::unexpected(r.error());
        }
    }
    for (int i = 1; i < argc; ++i) {
        std::string_view flag = argv[i];
        auto value = [&]() -> Result<std::string> {
            if (i + 1 >= argc) return bad(flag, "needs a value");
            return std::string(argv[++i]);
        };
        auto number = [&](int64_t lo, int64_t hi) -> Result<int64_t> {
            auto v = value();
            if (!v) return tl::unexpected(v.error());
            auto n = parse_whole<int64_t>(*v);
            if (!n || *n < lo || *n > hi)
                return bad(flag, "expected a number from " + std::to_string(lo) + " to " +
                                     std::to_string(hi) + ", got '" + *v + "'");
            return *n;
        };
#define NM_TRY(var, expr) \
    auto var = (expr);    \
    if (!var) return tl::unexpected(var.error())

        if (flag == "-h" || flag == "--help") {
            cli.action = CliAction::help;
        } else if (flag == "--version") {
            cli.action = CliAction::version;
        } else if (flag == "-c" || flag == "--config") {
            ++i;  // applied above
        } else if (flag == "--cluster") {
            NM_TRY(v, value());
            if (!Ipv4::parse(*v)) return bad(flag, "not an IPv4 address: '" + *v + "'");
            c.cluster_url = *v;
        } else if (flag == "--mqtt-port") {
            NM_TRY(n, number(1, 65535));
            c.cluster_mqtt_port = static_cast<uint16_t>(*n);
        } else if (flag == "--node-id") {
            NM_TRY(v, value());
            c.node_id = *v;
        } else if (flag == "--node-ip") {
            NM_TRY(v, value());
            if (!Ipv4::parse(*v)) return bad(flag, "not an IPv4 address: '" + *v + "'");
            c.node_public_address = *v;
        } else if (flag == "--subnet") {
            NM_TRY(v, value());
            auto cidr = Cidr::parse(*v);
            if (!cidr) return bad(flag, cidr.error().message);
            c.subnet = *cidr;
        } else if (flag == "--table") {
            NM_TRY(v, value());
            c.table_file = *v;
        } else if (flag == "--shards") {
            NM_TRY(n, number(1, 256));
            c.shards = static_cast<unsigned>(*n);
        } else if (flag == "--cpus") {
            NM_TRY(v, value());
            auto cpus = parse_cpu_list(*v);
            if (!cpus) return bad(flag, cpus.error().message);
            c.cpus = std::move(*cpus);
        } else if (flag == "--api-port") {
            NM_TRY(n, number(1, 65535));
            c.api_port = static_cast<uint16_t>(*n);
        } else if (flag == "--api-socket") {
            NM_TRY(v, value());
            c.api_socket = *v;
        } else if (flag == "--tunnel-port") {
            NM_TRY(n, number(1, 65535));
            c.tunnel_port = static_cast<uint16_t>(*n);
            c.node_public_port = c.tunnel_port;
        } else if (flag == "--mtu") {
            NM_TRY(n, number(576, 65535));
            c.mtu = static_cast<unsigned>(*n);
        } else if (flag == "--tun" || flag == "--bridge") {
            NM_TRY(v, value());
            if (v->empty() || v->size() > 15)
                return bad(flag, "interface names have 1 to 15 characters");
            (flag == "--tun" ? c.tun_device : c.bridge) = *v;
        } else if (flag == "--prefix") {
            NM_TRY(v, value());
            if (v->size() > 8) return bad(flag, "at most 8 characters (interface names are short)");
            c.ns_prefix = *v;
        } else if (flag == "--netns") {
            NM_TRY(v, value());
            c.netns = *v;
        } else if (flag == "--no-offload") {
            c.offload = false;
        } else if (flag == "--io") {
            NM_TRY(v, value());
            if (!parse_io_mode(*v, c.io))
                return bad(flag, "expected readiness or uring, got '" + *v + "'");
        } else if (flag == "--log-level") {
            NM_TRY(v, value());
            if (!parse_log_level(*v, c.log_level))
                return bad(flag, "expected debug, info, warn, error or off, got '" + *v + "'");
        } else {
            return fail(Errc::invalid_argument,
                        "unknown flag '" + std::string(flag) + "' (see --help)");
        }
#undef NM_TRY
    }
    return cli;
}

}  // namespace nm
