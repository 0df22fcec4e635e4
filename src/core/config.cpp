#include "core/config.hpp"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <cerrno>

#include "core/parse.hpp"

namespace nm {

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

const char* to_string(IoMode mode) {
    return name_of(mode, io_mode_names).data();
}

const char* to_string(Datapath datapath) {
    return name_of(datapath, datapath_names).data();
}

std::string usage() {
    return R"(Usage: netmanager [options]     run the agent
       netmanager status        the running agent's state (its GET /status)
       netmanager logs          the agent's log (journal of netmanager.service, or a log file)
       netmanager version       print the version
       netmanager COMMAND --help   that command's options

The node's network agent: container network, service translation table, and the
ServiceIP tunnel between nodes.

Configuration, later sources win: built-in defaults (the reference agent's address plan),
/etc/netmanager/netcfg.json and /etc/netmanager/tuncfg.json when they exist, each -c FILE,
environment variables named like the file keys (and TUN_MTU_SIZE), flags.

Options:
  -h, --help               show this help and exit
      --version            print the version and exit
  -c, --config FILE        read a JSON config file (netcfg.json / tuncfg.json keys, any case);
                           may be given more than once, later files win
      --cluster IP         register with the cluster at IP at start (MQTT, port --mqtt-port),
                           as --node-id; without it the node waits for POST /register
      --mqtt-port N        cluster broker port (default 10003)
      --node-id ID         MQTT client id for --cluster (default: hostname; a real Oakestra
                           cluster needs the node's 24-hex worker id)
      --node-ip IP         this node's address for tunnel peers (default: default route's)
      --subnet CIDR        standalone: this node's subnet (e.g. 10.18.0.64/26)
      --subnet6 CIDR       standalone: its IPv6 subnet (e.g. fc00::100/120; a bare base
                           gets /120); without it the node is IPv4 only
      --table FILE         standalone: load the translation table from FILE (JSON)
      --shards N           shard threads (default: online cores)
      --cpus LIST          cores the shards are pinned to, in shard order, e.g. 2,3
                           (default: shard i on core i)
      --api-port N         serve the node API on TCP port N (as well as any --api-socket)
      --api-address IP     the address the TCP API listens on (default 127.0.0.1: the node
                           only; 0.0.0.0 or :: exposes it, then give --api-token-file too)
      --api-token-file F   TCP requests must send "Authorization: Bearer <token>", the token
                           being F's first line (the unix socket needs none: it is root-only)
      --api-socket PATH    serve the node API on a unix socket
                           (default without --api-port: /etc/netmanager/netmanager.sock)
      --api-max-connections N  API connections open at once; more are closed (default 512)
      --api-idle-timeout MS    close an idle API connection after MS ms (default 30000)
      --tunnel-port N      UDP tunnel port (default 50103)
      --mtu N              MTU of the TUN, bridge and veths (default 1450)
      --tun NAME           TUN device name (default goProxyTun)
      --bridge NAME        bridge name (default goProxyBridge)
      --prefix P           prefix of app namespaces and links this agent creates
      --netns NAME         enter network namespace /run/netns/NAME before starting
      --no-offload         disable TUN/UDP segmentation offloads
      --rtt-probe-interval MS  mean time between round-trip probes to each peer node, jittered
                           +-25 % (Closest ranks by them; default 15000, 0: passive samples only)
      --io MODE            tunnel I/O: readiness (epoll waits and readv/recvmmsg/sendmmsg
                           syscalls) or uring (batches on each shard's own io_uring)
                           (default readiness)
      --datapath MODE      userspace (every packet through the TUN and the tunnel socket) or
                           auto (established IPv4 TCP/UDP flows to other nodes in eBPF at tc,
                           where the kernel accepts the programs; else userspace, logged)
                           (default userspace)
      --flow-idle MS       a UDP, ICMP or other connectionless flow idle for MS ms expires,
                           and its conversion with it (default 30000)
      --log-level LEVEL    debug, info, warn, error, off (default info)
      --log-file PATH      append the log to PATH instead of standard error (`netmanager logs`
                           reads /var/log/netmanager/netmanager.log when systemd does not run)
)";
}

bool is_ip_literal(const std::string& text) {
    in6_addr scratch{};
    return ::inet_pton(AF_INET, text.c_str(), &scratch) == 1 ||
           ::inet_pton(AF_INET6, text.c_str(), &scratch) == 1;
}

Result<Cli> parse_cli(int argc, const char* const* argv, const ConfigSources& sources) {
    Cli cli;
    Config& c = cli.config;
    auto bad = [](std::string_view flag, const std::string& what) {
        return fail(Errc::invalid_argument, "flag " + std::string(flag) + ": " + what);
    };
    // The default files when they exist, then -c files, then the environment; flags override
    // them all wherever they stand.
    for (const auto& path : sources.default_files) {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) continue;
        if (auto r = apply_config_file(c, path); !r) return tl::unexpected(r.error());
    }
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "-c" || a == "--config") {
            if (i + 1 >= argc) return bad(a, "needs a value");
            if (auto r = apply_config_file(c, argv[++i]); !r) return tl::unexpected(r.error());
        }
    }
    if (auto r = apply_environment(c, sources.getenv); !r) return tl::unexpected(r.error());
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
// NOLINTBEGIN(bugprone-macro-parentheses): `var` is the name the macro declares, not an
// expression (the check reads `auto var` as a use).
#define NM_TAKE(var, expr) \
    auto var = (expr);     \
    if (!(var)) return tl::unexpected((var).error())
        // NOLINTEND(bugprone-macro-parentheses)

        if (flag == "-h" || flag == "--help") {
            cli.action = CliAction::help;
        } else if (flag == "--version") {
            cli.action = CliAction::version;
        } else if (flag == "-c" || flag == "--config") {
            ++i;  // applied above
        } else if (flag == "--cluster") {
            NM_TAKE(v, value());
            if (!Ipv4::parse(*v)) return bad(flag, "not an IPv4 address: '" + *v + "'");
            c.cluster_url = *v;
            c.self_register = true;
        } else if (flag == "--mqtt-port") {
            NM_TAKE(n, number(1, 65535));
            c.cluster_mqtt_port = static_cast<uint16_t>(*n);
        } else if (flag == "--node-id") {
            NM_TAKE(v, value());
            c.node_id = *v;
        } else if (flag == "--node-ip") {
            NM_TAKE(v, value());
            if (!Ipv4::parse(*v)) return bad(flag, "not an IPv4 address: '" + *v + "'");
            c.node_public_address = *v;
        } else if (flag == "--subnet") {
            NM_TAKE(v, value());
            auto cidr = Cidr::parse(*v);
            if (!cidr) return bad(flag, cidr.error().message);
            c.subnet = *cidr;
        } else if (flag == "--subnet6") {
            NM_TAKE(v, value());
            auto cidr = Cidr6::parse(*v);
            if (!cidr) return bad(flag, cidr.error().message);
            if (v->find('/') == std::string::npos) cidr->prefix = c.subnet_prefix_v6;
            if (cidr->prefix < 64 || cidr->prefix > 126)
                return bad(flag, "the IPv6 subnet must be /64 to /126, got " + cidr->to_string());
            c.subnet_v6 = *cidr;
        } else if (flag == "--table") {
            NM_TAKE(v, value());
            c.table_file = *v;
        } else if (flag == "--shards") {
            NM_TAKE(n, number(1, 256));
            c.shards = static_cast<unsigned>(*n);
        } else if (flag == "--cpus") {
            NM_TAKE(v, value());
            auto cpus = parse_cpu_list(*v);
            if (!cpus) return bad(flag, cpus.error().message);
            c.cpus = std::move(*cpus);
        } else if (flag == "--api-port") {
            NM_TAKE(n, number(1, 65535));
            c.api_port = static_cast<uint16_t>(*n);
        } else if (flag == "--api-address") {
            NM_TAKE(v, value());
            if (!is_ip_literal(*v)) return bad(flag, "not an IPv4 or IPv6 address: '" + *v + "'");
            c.api_address = *v;
        } else if (flag == "--api-token-file") {
            NM_TAKE(v, value());
            c.api_token_file = *v;
        } else if (flag == "--api-max-connections") {
            NM_TAKE(n, number(1, 65536));
            c.api_max_connections = static_cast<unsigned>(*n);
        } else if (flag == "--api-idle-timeout") {
            NM_TAKE(n, number(100, 3600000));
            c.api_idle_timeout_ms = static_cast<unsigned>(*n);
        } else if (flag == "--api-socket") {
            NM_TAKE(v, value());
            c.api_socket = *v;
        } else if (flag == "--tunnel-port") {
            NM_TAKE(n, number(1, 65535));
            c.tunnel_port = static_cast<uint16_t>(*n);
            c.node_public_port = c.tunnel_port;
        } else if (flag == "--mtu") {
            NM_TAKE(n, number(576, 65535));
            c.mtu = static_cast<unsigned>(*n);
            c.bridge_mtu.reset();
        } else if (flag == "--tun" || flag == "--bridge") {
            NM_TAKE(v, value());
            if (v->empty() || v->size() > 15)
                return bad(flag, "interface names have 1 to 15 characters");
            (flag == "--tun" ? c.tun_device : c.bridge) = *v;
        } else if (flag == "--prefix") {
            NM_TAKE(v, value());
            if (v->size() > 8) return bad(flag, "at most 8 characters (interface names are short)");
            c.ns_prefix = *v;
        } else if (flag == "--netns") {
            NM_TAKE(v, value());
            c.netns = *v;
        } else if (flag == "--rtt-probe-interval") {
            NM_TAKE(n, number(0, 3600000));
            if (*n != 0 && *n < 100) return bad(flag, "0 (no probes) or at least 100 ms");
            c.rtt_probe_interval_ms = static_cast<unsigned>(*n);
        } else if (flag == "--no-offload") {
            c.offload = false;
        } else if (flag == "--io") {
            NM_TAKE(v, value());
            auto mode = parse_name(*v, io_mode_names);
            if (!mode) return bad(flag, "expected readiness or uring, got '" + *v + "'");
            c.io = *mode;
        } else if (flag == "--datapath") {
            NM_TAKE(v, value());
            auto datapath = parse_name(*v, datapath_names);
            if (!datapath) return bad(flag, "expected auto or userspace, got '" + *v + "'");
            c.datapath = *datapath;
        } else if (flag == "--flow-idle") {
            NM_TAKE(n, number(100, 86400000));
            c.flow_idle_ms = static_cast<unsigned>(*n);
        } else if (flag == "--log-file") {
            NM_TAKE(v, value());
            if (v->empty()) return bad(flag, "needs a file name");
            c.log_file = *v;
        } else if (flag == "--log-level") {
            NM_TAKE(v, value());
            auto level = parse_name(*v, log_level_names);
            if (!level)
                return bad(flag, "expected debug, info, warn, error or off, got '" + *v + "'");
            c.log_level = *level;
        } else {
            return fail(Errc::invalid_argument,
                        "unknown flag '" + std::string(flag) + "' (see --help)");
        }
#undef NM_TAKE
    }
    if (auto r = check_networks_v6(c); !r) return tl::unexpected(r.error());
    resolve_derived(c);
    return cli;
}

}  // namespace nm
