#include "core/config.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>

using namespace nm;

namespace {
std::string write_temp(const std::string& text) {
    char path[] = "/tmp/nm-config-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    close(fd);
    return path;
}

// A file that is removed at the end of the test.
struct TempFile {
    explicit TempFile(const std::string& text) : path(write_temp(text)) {}
    ~TempFile() { unlink(path.c_str()); }
    std::string path;
};

// Sources that do not depend on this machine: the given default files and environment only.
struct Sources {
    std::map<std::string, std::string> env;
    std::vector<std::string> files;
    ConfigSources get() const {
        ConfigSources s;
        s.default_files = files;
        s.getenv = [this](const char* name) -> const char* {
            auto it = env.find(name);
            return it == env.end() ? nullptr : it->second.c_str();
        };
        return s;
    }
};

Result<Cli> parse(std::vector<const char*> args, const Sources& sources = {}) {
    args.insert(args.begin(), "netmanager");
    return parse_cli(static_cast<int>(args.size()), args.data(), sources.get());
}

// The Config a file holding `json` gives, and the one `--config FILE` followed by `flags` gives.
struct FileThenFlags {
    Config file;
    Config flags;
};
FileThenFlags file_then_flags(const char* json, std::vector<const char*> flags) {
    TempFile file(json);
    FileThenFlags got;
    REQUIRE(apply_config_file(got.file, file.path));
    flags.insert(flags.begin(), {"--config", file.path.c_str()});
    auto cli = parse(flags);
    REQUIRE(cli);
    got.flags = cli->config;
    return got;
}

// A named setting, `key` in a file and `flag` on the command line: the file sets `a`, the flag
// then sets `b` over it, and the flag alone sets `a`.
template <class T>
void check_named_setting(T Config::*field, const std::string& key, const char* flag, Named<T> a,
                         Named<T> b) {
    auto json = "{\"" + key + "\": \"" + std::string(a.name) + "\"}";
    auto got = file_then_flags(json.c_str(), {flag, b.name.data()});
    CHECK(got.file.*field == a.value);
    CHECK(got.flags.*field == b.value);
    auto alone = parse({flag, a.name.data()});
    REQUIRE(alone);
    CHECK(alone->config.*field == a.value);
}

// The files as the reference agent ships them (oakestra-net node-net-manager/config/).
constexpr const char* shipped_netcfg = R"({
  "NodePublicAddress": "0.0.0.0",
  "NodePublicPort": "50103",
  "ClusterUrl": "0.0.0.0",
  "ClusterMqttPort": "10003",
  "DefaultInterface": "",
  "Debug": false,
  "PublicIPNetworking": false,
  "MqttCert": "",
  "MqttKey": ""
})";
constexpr const char* shipped_tuncfg = R"({
  "HostTunnelDeviceName": "goProxyTun",
  "TunnelIP": "10.19.1.254",
  "ProxySubnetwork": "10.30.0.0",
  "ProxySubnetworkMask": "255.255.0.0",
  "TunnelPort": 50103,
  "MTUsize": 1450,
  "TunNetIPv6": "fcef::dead:beef",
  "ProxySubnetworkIPv6": "fcef::",
  "ProxySubnetworkIPv6Prefix": 21
})";
}  // namespace

TEST_CASE("with nothing configured, the address plan is the reference agent's") {
    auto cli = parse({});
    REQUIRE(cli);
    const Config& c = cli->config;
    CHECK(c.tunnel_ip.to_string() == "10.19.1.254");
    CHECK(c.networks.container_network.to_string() == "10.16.0.0/12");
    CHECK(c.networks.service_network.to_string() == "10.30.0.0/16");
    CHECK(c.subnet_prefix == 26);
    CHECK(c.subnet_prefix_v6 == 120);
    CHECK(c.tun_device == "goProxyTun");
    CHECK(c.bridge == "goProxyBridge");
    CHECK(c.tunnel_port == 50103);
    CHECK(c.cluster_mqtt_port == 10003);
    CHECK(c.mtu == 1450);
    CHECK(c.veth_mtu() == 1450);
    CHECK(c.cluster_url.empty());
    CHECK_FALSE(c.self_register);
    CHECK(c.config_files.empty());
}

TEST_CASE(
    "the reference's shipped netcfg.json and tuncfg.json are read whole, as defaults when "
    "present") {
    TempFile net(shipped_netcfg), tun(shipped_tuncfg);
    Sources sources;
    sources.files = {net.path, "/nonexistent/netmanager/tuncfg.json", tun.path};
    auto cli = parse({}, sources);
    REQUIRE(cli);
    const Config& c = cli->config;
    CHECK(c.config_files == std::vector<std::string>{net.path, tun.path});  // a missing one is fine
    CHECK(c.node_public_address == "0.0.0.0");
    CHECK(c.node_public_port == 50103);
    CHECK(c.cluster_url == "0.0.0.0");
    CHECK(c.cluster_mqtt_port == 10003);
    CHECK(c.default_interface.empty());
    CHECK_FALSE(c.public_ip_networking);
    CHECK(c.tunnel_ip.to_string() == "10.19.1.254");
    CHECK(c.networks.service_network.to_string() == "10.30.0.0/16");
    CHECK(c.networks.container_network.to_string() == "10.16.0.0/12");
    CHECK(c.mtu == 1450);
    CHECK(c.tun_ipv6.to_string() == "fcef::dead:beef");
    CHECK(c.proxy_network_v6 == "fcef::");
    CHECK(c.proxy_network_v6_prefix == 21);
    // The shipped fcef::/21 does not move where IPv6 ServiceIPs and namespaces lie.
    CHECK(c.networks.service_network_v6.to_string() == "fdff::/16");
    CHECK(c.networks.container_network_v6.to_string() == "fc00::/7");
    CHECK_FALSE(c.subnet_v6);
}

TEST_CASE(
    "the standalone IPv6 subnet comes from --subnet6 or SubnetworkIPv6; a bare base gets /120") {
    TempFile file(R"({"SubnetworkIPv6": "fc00::200", "ServiceNetworkIPv6": "fdff::/20"})");
    Sources sources;
    sources.files = {file.path};
    auto from_file = parse({}, sources);
    REQUIRE(from_file);
    REQUIRE(from_file->config.subnet_v6);
    CHECK(from_file->config.subnet_v6->to_string() == "fc00::200/120");
    CHECK(from_file->config.networks.service_network_v6.to_string() == "fdff::/20");
    auto flag = parse({"--subnet6", "fc00::100/112"}, sources);
    REQUIRE(flag);
    CHECK(flag->config.subnet_v6->to_string() == "fc00::100/112");
    CHECK(parse({"--subnet6", "fc00::300"}, {})->config.subnet_v6->to_string() == "fc00::300/120");
    for (const char* bad : {"fc00::1::2", "10.0.0.0/24", "fc00::/48", "fc00::/127"}) {
        auto r = parse({"--subnet6", bad}, {});
        INFO(bad);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error().message, Catch::Contains("--subnet6"));
    }
    TempFile bad_file(R"({"SubnetworkIPv6": "fc00::zz"})");
    Sources bad_sources;
    bad_sources.files = {bad_file.path};
    auto r = parse({}, bad_sources);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("SubnetworkIPv6"));
}

TEST_CASE(
    "ContainerNetworkIPv6 and ServiceNetworkIPv6 must be unique-local networks holding "
    "the node's subnet apart") {
    auto with = [](const std::string& json, std::vector<const char*> args = {}) {
        TempFile file(json);
        Sources sources;
        sources.files = {file.path};
        return parse(args, sources);
    };
    auto ok =
        with(R"({"ContainerNetworkIPv6": "fc00::/8", "ServiceNetworkIPv6": "fdff:2000::/24"})",
             {"--subnet6", "fc00::100/120"});
    REQUIRE(ok);
    CHECK(ok->config.networks.container_network_v6.to_string() == "fc00::/8");
    CHECK(ok->config.networks.service_network_v6.to_string() == "fdff:2000::/24");
    for (const char* key : {"ContainerNetworkIPv6", "ServiceNetworkIPv6"}) {
        for (const char* bad : {"2001:db8::/32", "fe80::/10", "::/0", "fc00::1/7", "fc00::/121",
                                "fdff::", "10.0.0.0/8", "fc00::zz/8"}) {
            auto r = with(std::string("{\"") + key + "\": \"" + bad + "\"}");
            INFO(key << " " << bad);
            REQUIRE_FALSE(r);
            CHECK_THAT(r.error().message, Catch::Contains(key));
        }
    }
    auto outside = with(R"({"ContainerNetworkIPv6": "fd00::/8"})", {"--subnet6", "fc00::100"});
    REQUIRE_FALSE(outside);
    CHECK_THAT(outside.error().message, Catch::Contains("ContainerNetworkIPv6"));
    auto overlap = with(R"({"ServiceNetworkIPv6": "fc00::/16"})", {"--subnet6", "fc00::100"});
    REQUIRE_FALSE(overlap);
    CHECK_THAT(overlap.error().message, Catch::Contains("ServiceNetworkIPv6"));
}

TEST_CASE("ClusterUrl in a file is only the /register fallback, and --cluster registers at start") {
    TempFile net(shipped_netcfg);
    Sources sources;
    sources.files = {net.path};
    auto from_file = parse({}, sources);
    REQUIRE(from_file);
    CHECK(from_file->config.cluster_url == "0.0.0.0");
    CHECK_FALSE(from_file->config.self_register);
    auto by_flag =
        parse({"--cluster", "10.0.0.9", "--node-id", "65f1a2b3c4d5e6f708192a3b"}, sources);
    REQUIRE(by_flag);
    CHECK(by_flag->config.cluster_url == "10.0.0.9");
    CHECK(by_flag->config.node_id == "65f1a2b3c4d5e6f708192a3b");
    CHECK(by_flag->config.self_register);
}

TEST_CASE("a bad default file stops the start, naming the file and the key") {
    TempFile bad(R"({"TunnelPort": "fifty"})");
    Sources sources;
    sources.files = {bad.path};
    auto cli = parse({}, sources);
    REQUIRE_FALSE(cli);
    CHECK_THAT(cli.error().message, Catch::Contains(bad.path) && Catch::Contains("'TunnelPort'"));
    TempFile broken("{ not json");
    sources.files = {broken.path};
    auto again = parse({}, sources);
    REQUIRE_FALSE(again);
    CHECK_THAT(again.error().message, Catch::Contains(broken.path) && Catch::Contains("JSON"));
}

TEST_CASE("the container network is TunnelIP/12 unless ContainerNetwork names it") {
    TempFile tun(R"({"TunnelIP": "10.40.1.254"})");
    auto derived = parse({"-c", tun.path.c_str()});
    REQUIRE(derived);
    CHECK(derived->config.networks.container_network.to_string() == "10.32.0.0/12");
    TempFile ours(R"({"TunnelIP": "10.40.1.254", "ContainerNetwork": "10.64.0.0/10"})");
    auto given = parse({"-c", ours.path.c_str()});
    REQUIRE(given);
    CHECK(given->config.networks.container_network.to_string() == "10.64.0.0/10");
}

TEST_CASE("config keys match whatever their case, as the reference's JSON decoder matches them") {
    TempFile f(R"({"tunnelip": "10.19.2.254", "MTUSIZE": 1400, "clusterURL": "10.0.0.9",
                   "debug": true, "proxysubnetwork": "10.31.0.0", "PROXYSUBNETWORKMASK": "255.255.0.0"})");
    auto cli = parse({"-c", f.path.c_str()});
    REQUIRE(cli);
    CHECK(cli->config.tunnel_ip.to_string() == "10.19.2.254");
    CHECK(cli->config.mtu == 1400);
    CHECK(cli->config.cluster_url == "10.0.0.9");
    CHECK(cli->config.log_level == LogLevel::debug);
    CHECK(cli->config.networks.service_network.to_string() == "10.31.0.0/16");
}

TEST_CASE("environment variables named like the keys override the files, and flags override both") {
    TempFile f(R"({"ClusterMqttPort": "10003", "ClusterUrl": "10.0.0.1", "TunnelIP": "10.19.1.254",
                   "NodePublicPort": "50103"})");
    Sources sources;
    sources.files = {f.path};
    sources.env = {{"ClusterMqttPort", "1883"}, {"ClusterUrl", "10.0.0.2"},
                   {"TunnelIP", "10.20.0.1"},   {"Debug", "true"},
                   {"NodePublicPort", ""},      {"clusterurl", "10.0.0.99"}};
    auto env = parse({}, sources);
    REQUIRE(env);
    CHECK(env->config.cluster_mqtt_port == 1883);
    CHECK(env->config.cluster_url == "10.0.0.2");  // variable names are exact, as the reference's
    CHECK(env->config.tunnel_ip.to_string() == "10.20.0.1");
    CHECK(env->config.networks.container_network.to_string() == "10.16.0.0/12");
    CHECK(env->config.log_level == LogLevel::debug);
    CHECK(env->config.node_public_port == 50103);  // an empty variable counts as unset
    auto flags = parse({"--mqtt-port", "8883", "-c", f.path.c_str()}, sources);
    REQUIRE(flags);
    CHECK(flags->config.cluster_mqtt_port == 8883);
    CHECK(flags->config.cluster_url == "10.0.0.2");
}

TEST_CASE("TUN_MTU_SIZE sets the bridge and veth MTU, MTUsize the TUN's, --mtu all of them") {
    TempFile f(R"({"MTUsize": 1400})");
    Sources sources;
    sources.files = {f.path};
    auto files_only = parse({}, sources);
    REQUIRE(files_only);
    CHECK(files_only->config.mtu == 1400);
    CHECK(files_only->config.veth_mtu() == 1400);
    sources.env = {{"TUN_MTU_SIZE", "1300"}};
    auto env = parse({}, sources);
    REQUIRE(env);
    CHECK(env->config.mtu == 1400);
    CHECK(env->config.veth_mtu() == 1300);
    auto flag = parse({"--mtu", "1200"}, sources);
    REQUIRE(flag);
    CHECK(flag->config.mtu == 1200);
    CHECK(flag->config.veth_mtu() == 1200);
}

TEST_CASE("a bad environment variable is rejected naming the variable") {
    auto [name, value] = GENERATE(table<std::string, std::string>({
        {"TUN_MTU_SIZE", "big"},
        {"TUN_MTU_SIZE", "100"},
        {"TunnelPort", "x"},
        {"Debug", "maybe"},
        {"TunnelIP", "10.19.1"},
        {"TunNetIPv6", "fcef::zz"},
        {"DnsUpstream", "resolver.example"},
        {"DnsUpstream", "10.0.0.2:0"},
        {"DnsPort", "99999"},
    }));
    Sources sources;
    sources.env = {{name, value}};
    auto cli = parse({}, sources);
    REQUIRE_FALSE(cli);
    CHECK_THAT(cli.error().message,
               Catch::Contains("environment") && Catch::Contains("'" + name + "'"));
}

TEST_CASE("the names keys: DnsUpstream lists ip[:port], DnsPort and DnsRateLimit are numbers") {
    Sources sources;
    auto defaults = parse({}, sources);
    REQUIRE(defaults);
    CHECK(defaults->config.dns_port == 53);
    CHECK(defaults->config.dns_upstream.empty());
    sources.env = {
        {"DnsUpstream", "10.0.0.2, 10.0.0.3:5353"}, {"DnsPort", "5300"}, {"DnsRateLimit", "0"}};
    auto cli = parse({}, sources);
    REQUIRE(cli);
    const auto& c = cli->config;
    REQUIRE(c.dns_upstream.size() == 2);
    CHECK(c.dns_upstream[0] == DnsServerAddress{*Ipv4::parse("10.0.0.2"), 53});
    CHECK(c.dns_upstream[1] == DnsServerAddress{*Ipv4::parse("10.0.0.3"), 5353});
    CHECK(c.dns_port == 5300);
    CHECK(c.dns_rate_limit == 0);
}

TEST_CASE("a config file with the reference agent's field names is accepted") {
    auto path = write_temp(R"({
        "NodePublicAddress": "10.250.0.1", "NodePublicPort": 50011, "ClusterUrl": "10.0.0.9",
        "ClusterMqttPort": "10003", "Debug": true, "HostTunnelDeviceName": "tun7",
        "TunnelIP": "172.19.1.254", "ProxySubnetwork": "172.32.0.0",
        "ProxySubnetworkMask": "255.255.0.0", "TunnelPort": 50011, "MTUsize": 1400,
        "MqttCert": "/etc/nm/node.crt", "MqttKey": "/etc/nm/node.key", "MqttCa": "/etc/nm/ca.crt",
        "SomethingElse": [1, 2, 3]})");
    Config cfg;
    auto r = apply_config_file(cfg, path);
    REQUIRE(r);
    CHECK(cfg.node_public_address == "10.250.0.1");
    CHECK(cfg.node_public_port == 50011);
    CHECK(cfg.cluster_url == "10.0.0.9");
    CHECK(cfg.cluster_mqtt_port == 10003);
    CHECK(cfg.tun_device == "tun7");
    CHECK(cfg.networks.service_network.to_string() == "172.32.0.0/16");
    CHECK(cfg.tunnel_port == 50011);
    CHECK(cfg.mtu == 1400);
    CHECK(cfg.log_level == LogLevel::debug);
    CHECK(cfg.mqtt_cert == "/etc/nm/node.crt");
    CHECK(cfg.mqtt_key == "/etc/nm/node.key");
    CHECK(cfg.mqtt_ca == "/etc/nm/ca.crt");
    unlink(path.c_str());
}

TEST_CASE("a bad config field is rejected with the file and the field named") {
    auto [text, field] = GENERATE(table<std::string, std::string>({
        {R"({"TunnelPort": 70000})", "TunnelPort"},
        {R"({"TunnelPort": "abc"})", "TunnelPort"},
        {R"({"TunnelIP": "172.19.1"})", "TunnelIP"},
        {R"({"ProxySubnetworkMask": "255.0.255.0"})", "ProxySubnetworkMask"},
        {R"({"MTUsize": 10})", "MTUsize"},
        {R"({"Debug": "yes"})", "Debug"},
        {R"({"HostTunnelDeviceName": "a-very-long-device-name"})", "HostTunnelDeviceName"},
        {R"({"NodePublicAddress": 5})", "NodePublicAddress"},
        {R"({"IoMode": "io_uring"})", "IoMode"},
        {R"({"Datapath": "ebpf"})", "Datapath"},
        {R"({"TunNetIPv6": "fcef::dead::beef"})", "TunNetIPv6"},
        {R"({"ProxySubnetworkIPv6Prefix": 200})", "ProxySubnetworkIPv6Prefix"},
        {R"({"PublicIPNetworking": "no"})", "PublicIPNetworking"},
    }));
    auto path = write_temp(text);
    Config cfg;
    Config before = cfg;
    auto r = apply_config_file(cfg, path);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::invalid_argument);
    CHECK_THAT(r.error().message, Catch::Contains(path) && Catch::Contains("'" + field + "'"));
    CHECK(cfg.tunnel_port == before.tunnel_port);
    CHECK(cfg.mtu == before.mtu);
    unlink(path.c_str());
}

TEST_CASE("a config file that is not JSON is rejected with the file named") {
    auto path = write_temp("{ not json");
    Config cfg;
    auto r = apply_config_file(cfg, path);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains(path) && Catch::Contains("JSON"));
    unlink(path.c_str());
}

TEST_CASE("flags override the config file") {
    auto path = write_temp(R"({"TunnelPort": 50011, "MTUsize": 1400})");
    const char* argv[] = {"netmanager", "--mtu", "1300", "--config", path.c_str(), "--shards", "3"};
    auto cli = parse_cli(7, argv, Sources{}.get());
    REQUIRE(cli);
    CHECK(cli->config.mtu == 1300);
    CHECK(cli->config.tunnel_port == 50011);
    CHECK(cli->config.shards == 3);
    unlink(path.c_str());
}

TEST_CASE("the tunnel I/O mode comes from IoMode in a file or --io, readiness by default") {
    CHECK(Config{}.io == IoMode::readiness);
    check_named_setting(&Config::io, "IoMode", "--io", {"uring", IoMode::uring},
                        {"readiness", IoMode::readiness});
}

TEST_CASE("the data path comes from Datapath in a file or --datapath, userspace by default") {
    CHECK(Config{}.datapath == Datapath::userspace);
    check_named_setting(&Config::datapath, "Datapath", "--datapath", {"auto", Datapath::automatic},
                        {"userspace", Datapath::userspace});
}

TEST_CASE(
    "the API's connection cap and idle timeout come from a file or flags, 512 and 30 s by "
    "default") {
    CHECK(Config{}.api_max_connections == 512);
    CHECK(Config{}.api_idle_timeout_ms == 30000);
    auto got = file_then_flags(R"({"ApiMaxConnections": 64, "ApiIdleTimeoutMs": 2000})",
                               {"--api-max-connections", "8", "--api-idle-timeout", "300"});
    CHECK(got.file.api_max_connections == 64);
    CHECK(got.file.api_idle_timeout_ms == 2000);
    CHECK(got.flags.api_max_connections == 8);
    CHECK(got.flags.api_idle_timeout_ms == 300);
}

TEST_CASE("connectionless flows expire after 30 s idle unless --flow-idle says otherwise") {
    CHECK(Config{}.flow_idle_ms == 30000);
    const char* argv[] = {"netmanager", "--flow-idle", "2000"};
    auto cli = parse_cli(3, argv, Sources{}.get());
    REQUIRE(cli);
    CHECK(cli->config.flow_idle_ms == 2000);
}

TEST_CASE("the round-trip probe interval comes from RttProbeIntervalMs and --rtt-probe-interval") {
    CHECK(Config{}.rtt_probe_interval_ms == 15000);
    auto got = file_then_flags(R"({"RttProbeIntervalMs": 0})", {"--rtt-probe-interval", "1000"});
    CHECK(got.file.rtt_probe_interval_ms == 0);
    CHECK(got.flags.rtt_probe_interval_ms == 1000);
}

TEST_CASE("the shards' cores follow the order --cpus gives") {
    const char* argv[] = {"netmanager", "--cpus", "1,0,3"};
    auto cli = parse_cli(3, argv, Sources{}.get());
    REQUIRE(cli);
    CHECK(cli->config.cpus == std::vector<unsigned>{1, 0, 3});
}

TEST_CASE(
    "the --log-file flag names the file the log is appended to, and without it the log goes to "
    "stderr") {
    const char* argv[] = {"netmanager", "--log-file", "/var/log/netmanager/netmanager.log"};
    auto cli = parse_cli(3, argv);
    REQUIRE(cli);
    CHECK(cli->config.log_file == "/var/log/netmanager/netmanager.log");
    CHECK(parse_cli(1, argv)->config.log_file.empty());
}

TEST_CASE("a bad flag is rejected with the flag named") {
    auto [a, b, needle] = GENERATE(table<const char*, const char*, std::string>({
        {"--shards", "zero", "--shards"},
        {"--api-port", "99999", "--api-port"},
        {"--cluster", "not-an-ip", "--cluster"},
        {"--log-level", "loud", "--log-level"},
        {"--io", "epoll", "--io"},
        {"--datapath", "kernel", "--datapath"},
        {"--api-max-connections", "0", "--api-max-connections"},
        {"--api-idle-timeout", "5", "--api-idle-timeout"},
        {"--flow-idle", "0", "--flow-idle"},
        {"--rtt-probe-interval", "50", "at least 100 ms"},
        {"--rtt-probe-interval", "-1", "--rtt-probe-interval"},
        {"--log-file", "", "--log-file"},
        {"--bogus", "x", "--bogus"},
        {"--cpus", "1,,2", "'' is not a core number"},
        {"--cpus", "0,x", "'x' is not a core number"},
        {"--cpus", "1,", "ends with a comma"},
        {"--cpus", "", "--cpus"},
    }));
    const char* argv[] = {"netmanager", a, b};
    auto cli = parse_cli(3, argv, Sources{}.get());
    REQUIRE_FALSE(cli);
    CHECK_THAT(cli.error().message, Catch::Contains(needle));
}

TEST_CASE(
    "node subnets are /26 and /120 unless SubnetworkPrefix and SubnetworkPrefixIPv6 say "
    "otherwise") {
    TempFile plain(R"({"Subnetwork": "10.18.0.64"})");
    auto cli = parse({"-c", plain.path.c_str()});
    REQUIRE(cli);
    REQUIRE(cli->config.subnet);
    CHECK(cli->config.subnet->to_string() == "10.18.0.64/26");
    TempFile wide(
        R"({"Subnetwork": "10.18.1.0", "SubnetworkPrefix": 24, "SubnetworkPrefixIPv6": 112})");
    auto other = parse({"-c", wide.path.c_str()});
    REQUIRE(other);
    CHECK(other->config.subnet->to_string() == "10.18.1.0/24");
    CHECK(other->config.subnet_prefix == 24);
    CHECK(other->config.subnet_prefix_v6 == 112);
}

TEST_CASE("the TCP API listens on 127.0.0.1 unless ApiAddress or --api-address says otherwise") {
    auto defaults = parse({"--api-port", "7070"});
    REQUIRE(defaults);
    CHECK(defaults->config.api_address == "127.0.0.1");
    CHECK(defaults->config.api_token_file.empty());

    TempFile file(R"({"ApiPort": 7071, "apiaddress": "0.0.0.0", "ApiTokenFile": "/etc/nm-token"})");
    Sources sources;
    sources.files = {file.path};
    auto from_file = parse({}, sources);
    REQUIRE(from_file);
    CHECK(from_file->config.api_port == 7071);
    CHECK(from_file->config.api_address == "0.0.0.0");
    CHECK(from_file->config.api_token_file == "/etc/nm-token");

    auto flags = parse({"--api-address", "::1", "--api-token-file", "/run/t"}, sources);
    REQUIRE(flags);
    CHECK(flags->config.api_address == "::1");
    CHECK(flags->config.api_token_file == "/run/t");

    auto bad = parse({"--api-address", "localhost"});
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("--api-address") != std::string::npos);
    TempFile bad_file(R"({"ApiAddress": "10.0.0"})");
    Config cfg;
    auto rejected = apply_config_file(cfg, bad_file.path);
    REQUIRE_FALSE(rejected);
    CHECK(rejected.error().message.find("ApiAddress") != std::string::npos);
    CHECK(cfg.api_address == "127.0.0.1");
}
