#pragma once
// Agent configuration: defaults, then the reference agent's JSON files, then flags.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "core/error.hpp"
#include "core/log.hpp"

namespace nm {

// How a shard moves tunnel packets: readiness waits plus one syscall per read/write batch
// (readv, recvmmsg, sendmmsg), or batches of operations on the shard's own io_uring.
enum class IoMode { readiness, uring };
// "readiness" / "uring"; false for anything else.
bool parse_io_mode(std::string_view text, IoMode& out);
const char* to_string(IoMode mode);

struct Config {
    // Node (reference netcfg.json)
    std::string node_public_address = "0.0.0.0";  // 0.0.0.0: the default route's address
    uint16_t node_public_port = 50103;
    std::string cluster_url;  // empty: standalone
    uint16_t cluster_mqtt_port = 10003;
    std::string default_interface;  // masquerade out of it; empty: the default route's link
    bool debug = false;
    std::string mqtt_cert, mqtt_key;  // TLS to the broker when both are set
    std::string mqtt_ca;  // CA file that signed the broker's certificate (default: /etc/ssl/certs)
    std::string node_id;  // MQTT client id; default: hostname

    // Tunnel (reference tuncfg.json)
    std::string tun_device = "goProxyTun";
    Ipv4 tunnel_ip{0xac1301fe};                    // 172.19.1.254
    Cidr service_network{Ipv4{0xac1e0000}, 16};    // 172.30.0.0/16
    Cidr container_network{Ipv4{0xac100000}, 12};  // 172.16.0.0/12
    uint16_t tunnel_port = 50103;
    unsigned mtu = 1450;
    bool offload = true;
    IoMode io = IoMode::readiness;  // IoMode in tuncfg.json, --io

    // Environment
    std::string bridge = "goProxyBridge";
    std::optional<Cidr> subnet;  // standalone: this node's subnet; else the cluster assigns it
    std::string ns_prefix;       // prefix for app namespaces and links this agent creates
    std::string table_file;      // standalone: static translation table

    // Process
    unsigned shards = 0;         // 0: one per online core
    std::vector<unsigned> cpus;  // shard i runs on cpus[i % size]; empty: shard i on core i
    uint16_t api_port = 0;
    std::string api_socket;
    std::string netns;  // enter this network namespace before any thread starts
    LogLevel log_level = LogLevel::info;
    std::vector<std::string> config_files;
};

// Applies a JSON file's fields onto cfg. Unknown fields are ignored (the reference files carry
// more than we use); a known field of the wrong type or value is an error naming file and field.
Result<void> apply_config_file(Config& cfg, const std::string& path);

enum class CliAction { run, help, version };
struct Cli {
    CliAction action = CliAction::run;
    Config config;
};
// Flags override files. Errors name the flag.
Result<Cli> parse_cli(int argc, const char* const* argv);

// "2,3,0": core numbers in shard order, for --cpus.
Result<std::vector<unsigned>> parse_cpu_list(std::string_view text);
std::string usage();

}  // namespace nm
