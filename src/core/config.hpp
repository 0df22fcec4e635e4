#pragma once
// Agent configuration. Sources, lowest to highest precedence: built-in defaults (the reference
// agent's address plan), the config files (/etc/netmanager/netcfg.json and tuncfg.json when they
// exist, then every -c FILE in order), environment variables named like the file keys, flags.
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "core/address_plan.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/parse.hpp"

namespace nm {

// How a shard moves tunnel packets: readiness waits plus one syscall per read/write batch
// (readv, recvmmsg, sendmmsg), or batches of operations on the shard's own io_uring.
enum class IoMode { readiness, uring };
inline constexpr Named<IoMode> io_mode_names[] = {{"readiness", IoMode::readiness},
                                                  {"uring", IoMode::uring}};
const char* to_string(IoMode mode);

// Which data path carries established flows: the userspace (coroutine) path alone, or, where
// the kernel accepts the eBPF programs, the kernel fast path for what the agent has decided
// (auto; falls back to userspace, saying so, when loading fails).
enum class Datapath { userspace, automatic };
inline constexpr Named<Datapath> datapath_names[] = {{"userspace", Datapath::userspace},
                                                     {"auto", Datapath::automatic}};
const char* to_string(Datapath datapath);

// Where the reference agent serves its API, and so where the node engine calls it.
inline constexpr std::string_view default_api_socket = "/etc/netmanager/netmanager.sock";

// One resolver to forward to: "10.0.0.2" or "10.0.0.2:5353".
struct DnsServerAddress {
    Ipv4 ip;
    uint16_t port = 53;
    friend bool operator==(const DnsServerAddress&, const DnsServerAddress&) = default;
};
// "ip[:port]" items separated by commas or spaces; the message names the bad item.
Result<std::vector<DnsServerAddress>> parse_dns_servers(std::string_view text);

struct Config {
    // Node (reference netcfg.json)
    std::string node_public_address = "0.0.0.0";  // 0.0.0.0: the default route's address
    uint16_t node_public_port = 50103;
    // The broker /register falls back to when its cluster_address is empty or absent. It never
    // starts a registration by itself (the shipped file says "0.0.0.0"); --cluster does.
    std::string cluster_url;
    bool self_register = false;  // --cluster: register at start as node_id, without /register
    uint16_t cluster_mqtt_port = 10003;
    std::string default_interface;  // masquerade out of it; empty: the default route's link
    bool debug = false;
    bool public_ip_networking = false;  // read and ignored (see docs/configuration.md)
    std::string mqtt_cert, mqtt_key;    // TLS to the broker when both are set
    std::string mqtt_ca;  // CA file that signed the broker's certificate (default: /etc/ssl/certs)
    std::string node_id;  // --cluster's MQTT client id; default: hostname

    // Tunnel (reference tuncfg.json)
    std::string tun_device = "goProxyTun";
    Ipv4 tunnel_ip = default_tunnel_ip;
    // ProxySubnetwork; the container network is TunnelIP/12 unless ContainerNetwork names it
    // (resolved after every source is read). The IPv6 ones are ours (ServiceNetworkIPv6,
    // ContainerNetworkIPv6): where Address_v6 and nsipv6 lie. Not ProxySubnetworkIPv6: the
    // shipped tuncfg.json sets it to fcef::/21, which holds neither.
    Networks networks;
    bool container_network_given = false;
    uint16_t tunnel_port = 50103;
    unsigned mtu = 1450;                      // the TUN's (MTUsize, --mtu)
    std::optional<unsigned> bridge_mtu;       // bridge and veths (TUN_MTU_SIZE); none: mtu
    Ipv6 tun_ipv6 = default_tunnel_ipv6;      // TunNetIPv6 (with /7 on the TUN)
    std::string proxy_network_v6 = "fc00::";  // ProxySubnetworkIPv6: checked and stored
    unsigned proxy_network_v6_prefix = 7;     // ProxySubnetworkIPv6Prefix: likewise
    bool offload = true;
    IoMode io = IoMode::readiness;            // IoMode in tuncfg.json, --io
    Datapath datapath = Datapath::userspace;  // Datapath in tuncfg.json, --datapath
    unsigned flow_idle_ms = 30000;  // a UDP/ICMP/other flow idle this long expires (--flow-idle)

    // Environment
    std::string bridge = "goProxyBridge";
    std::optional<Cidr> subnet;      // standalone: this node's subnet; else the cluster assigns it
    std::optional<Cidr6> subnet_v6;  // standalone: its IPv6 subnet (none: IPv4 only)
    uint8_t subnet_prefix = default_subnet_prefix;        // of a bare subnetwork/result address
    uint8_t subnet_prefix_v6 = default_subnet_prefix_v6;  // of a bare addressv6
    std::string ns_prefix;   // prefix for app namespaces and links this agent creates
    std::string table_file;  // standalone: static translation table
    // Mean time between ICMP probes to each peer node (Closest ranks by them); 0: no probes.
    unsigned rtt_probe_interval_ms = 15000;

    // Names (src/mdns, docs/names.md)
    uint16_t dns_port = 53;  // DnsPort: DNS on the bridge address; 0: no names at all
    std::vector<DnsServerAddress> dns_upstream;  // DnsUpstream; empty: the node's resolv.conf
    unsigned dns_rate_limit = 500;  // DnsRateLimit: queries per second per source; 0: no limit

    // Process
    unsigned shards = 0;         // 0: one per online core
    std::vector<unsigned> cpus;  // shard i runs on cpus[i % size]; empty: shard i on core i
    uint16_t api_port = 0;
    std::string api_address = "127.0.0.1";  // where the TCP API listens (IPv4 or IPv6 literal)
    std::string api_token_file;  // TCP requests must carry "Authorization: Bearer <its text>"
    std::string api_socket;
    unsigned api_max_connections = 512;    // more are closed at once (and counted)
    unsigned api_idle_timeout_ms = 30000;  // a kept-alive API connection waits this long
    std::string netns;                     // enter this network namespace before any thread starts
    LogLevel log_level = LogLevel::info;
    std::string log_file;                   // append the log here instead of standard error
    std::vector<std::string> config_files;  // the files actually read, in order

    unsigned veth_mtu() const { return bridge_mtu.value_or(mtu); }
};

// An IPv4 or IPv6 address in text form (as --api-address takes it).
bool is_ip_literal(const std::string& text);

// Applies a JSON file's fields onto cfg. Keys match case-insensitively (as the reference's Go
// decoder does); unknown keys are ignored (the reference files carry more than we use); a known
// key of the wrong type or value is an error naming file and key, and changes nothing.
Result<void> apply_config_file(Config& cfg, const std::string& path);

// Environment variables named exactly like the file keys (e.g. ClusterUrl=10.0.0.9), and
// TUN_MTU_SIZE for the bridge and veth MTU. Empty values count as unset (as the reference's).
using EnvLookup = std::function<const char*(const char* name)>;
Result<void> apply_environment(Config& cfg, const EnvLookup& getenv);

// TunnelIP/12 as the container network, unless a source gave ContainerNetwork.
void resolve_derived(Config& cfg);
// The standalone IPv6 subnet, when given, lies inside ContainerNetworkIPv6 and outside
// ServiceNetworkIPv6 (its namespaces' addresses would be taken for ServiceIPs). Checked once every
// source is read.
Result<void> check_networks_v6(const Config& cfg);

// Where parse_cli reads from besides argv (tests replace both).
struct ConfigSources {
    // Read in order when they exist; a missing one is fine, an unreadable or bad one an error.
    std::vector<std::string> default_files = {"/etc/netmanager/netcfg.json",
                                              "/etc/netmanager/tuncfg.json"};
    EnvLookup getenv = [](const char* name) -> const char* { return ::getenv(name); };
};

enum class CliAction { run, help, version };
struct Cli {
    CliAction action = CliAction::run;
    Config config;
};
// Defaults < files < environment < flags. Errors name the flag, variable or file and key.
Result<Cli> parse_cli(int argc, const char* const* argv, const ConfigSources& sources = {});

// "2,3,0": core numbers in shard order, for --cpus.
Result<std::vector<unsigned>> parse_cpu_list(std::string_view text);
std::string usage();

}  // namespace nm
