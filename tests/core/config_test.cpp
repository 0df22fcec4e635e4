#include "core/config.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

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
}  // namespace

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
    CHECK(cfg.service_network.to_string() == "172.32.0.0/16");
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
    auto cli = parse_cli(7, argv);
    REQUIRE(cli);
    CHECK(cli->config.mtu == 1300);
    CHECK(cli->config.tunnel_port == 50011);
    CHECK(cli->config.shards == 3);
    unlink(path.c_str());
}

TEST_CASE("the tunnel I/O mode comes from IoMode in a file or --io, readiness by default") {
    CHECK(Config{}.io == IoMode::readiness);
    auto path = write_temp(R"({"IoMode": "uring"})");
    Config cfg;
    REQUIRE(apply_config_file(cfg, path));
    CHECK(cfg.io == IoMode::uring);
    const char* argv[] = {"netmanager", "--config", path.c_str(), "--io", "readiness"};
    auto cli = parse_cli(5, argv);
    REQUIRE(cli);
    CHECK(cli->config.io == IoMode::readiness);
    const char* uring[] = {"netmanager", "--io", "uring"};
    auto second = parse_cli(3, uring);
    REQUIRE(second);
    CHECK(second->config.io == IoMode::uring);
    unlink(path.c_str());
}

TEST_CASE("the shards' cores follow the order --cpus gives") {
    const char* argv[] = {"netmanager", "--cpus", "1,0,3"};
    auto cli = parse_cli(3, argv);
    REQUIRE(cli);
    CHECK(cli->config.cpus == std::vector<unsigned>{1, 0, 3});
}

TEST_CASE("a bad flag is rejected with the flag named") {
    auto [a, b, needle] = GENERATE(table<const char*, const char*, std::string>({
        {"--shards", "zero", "--shards"},
        {"--api-port", "99999", "--api-port"},
        {"--cluster", "not-an-ip", "--cluster"},
        {"--log-level", "loud", "--log-level"},
        {"--io", "epoll", "--io"},
        {"--bogus", "x", "--bogus"},
        {"--cpus", "1,,2", "'' is not a core number"},
        {"--cpus", "0,x", "'x' is not a core number"},
        {"--cpus", "1,", "ends with a comma"},
        {"--cpus", "", "--cpus"},
    }));
    const char* argv[] = {"netmanager", a, b};
    auto cli = parse_cli(3, argv);
    REQUIRE_FALSE(cli);
    CHECK_THAT(cli.error().message, Catch::Contains(needle));
}
