// Node setup, TUN configuration and teardown, inside a simulated host.
#include <catch2/catch.hpp>

#include "env/forward_accepts.hpp"
#include "env/sysctl.hpp"
#include "env_fixture.hpp"

using namespace nm;
using namespace nm::test;

TEST_CASE(
    "node setup builds the bridge, forwarding and the agent's table, and teardown removes them") {
    Agent a("s");
    a.config.uplink = "up0";
    std::string root_forward = sh_out("cat /proc/sys/net/ipv4/ip_forward");
    std::string before = a.state();
    a.host.run([&] {
        std::string forward_before = *read_sysctl("net.ipv4.ip_forward");
        auto net = a.setup_node();
        std::string br = a.ip("-d link show goProxyBridge");
        CHECK(contains(br, "mtu 1450"));
        CHECK(contains(br, ",UP"));
        CHECK(contains(br, "bridge"));
        CHECK(contains(a.ip("-o addr show goProxyBridge"), "inet 172.19.1.1/24"));
        CHECK(*read_sysctl("net.ipv4.ip_forward") == "1");
        CHECK(*read_sysctl(rp_filter_key("goProxyBridge")) == "0");
        std::string table = a.nft("list table ip " + net->table_name());
        CHECK(contains(table, "iifname \"goProxyBridge\" oifname \"goProxyTun\" accept"));
        CHECK(contains(table, "oifname \"up0\" ip saddr 172.19.1.0/24 masquerade"));
        CHECK(net->table_name().find(a.prefix) != std::string::npos);
        net->teardown();
        CHECK(*read_sysctl("net.ipv4.ip_forward") == forward_before);
    });
    CHECK(a.state() == before);
    // The root namespace saw none of it.
    CHECK(sh_out("cat /proc/sys/net/ipv4/ip_forward") == root_forward);
    CHECK_FALSE(contains(sh_out("nft list tables 2>&1"), "netmanager_" + a.prefix));
}

TEST_CASE("with no uplink named, setup masquerades the subnet through the default route's link") {
    Agent a("d");
    a.config.detect_uplink = true;
    const std::string in_host = "ip -n " + a.host.name() + " ";
    REQUIRE(sh(in_host + "link add up0 type veth peer name up0p") == 0);
    REQUIRE(sh(in_host + "addr add 10.251.0.1/24 dev up0 && " + in_host + "link set up0 up && " +
               in_host + "link set up0p up") == 0);
    a.host.run([&] {
        auto net = a.setup_node();
        CHECK(net->config().uplink.empty());
        CHECK_FALSE(contains(a.nft("list table ip " + net->table_name()), "oifname \"up0\""));
    });
    REQUIRE(sh(in_host + "route add default via 10.251.0.2") == 0);
    a.host.run([&] {
        auto net = a.setup_node();
        CHECK(net->config().uplink == "up0");
        CHECK(contains(a.nft("list table ip " + net->table_name()),
                       "oifname \"up0\" ip saddr " + a.config.subnet.to_string() + " masquerade"));
    });
}

TEST_CASE(
    "when iptables' FORWARD chain exists, setup accepts the bridge there in iptables' own form and "
    "teardown removes exactly those rules") {
    Agent a("i");
    const std::string iptables = "ip netns exec " + a.host.name() + " iptables ";
    SECTION("a host whose FORWARD policy is DROP, with a rule of its own") {
        REQUIRE(sh(iptables + "-P FORWARD DROP && " + iptables + "-A FORWARD -i eth9 -j ACCEPT") ==
                0);
        const std::string before = sh_out(iptables + "-S FORWARD");
        a.host.run([&] {
            auto net = a.setup_node();
            // iptables still reads the chain (it refuses chains with rules it cannot show).
            std::string rules = sh_out(iptables + "-S FORWARD 2>&1");
            const std::string tag = "-m comment --comment " + net->table_name() + " -j ACCEPT";
            CHECK(contains(rules, "-A FORWARD -i goProxyBridge " + tag));
            CHECK(contains(rules, "-A FORWARD -o goProxyBridge " + tag));
            CHECK(contains(rules, "-A FORWARD -i eth9 -j ACCEPT"));
            CHECK(rules.find("goProxyBridge") < rules.find("eth9"));  // ahead of the host's
            net->teardown();
        });
        CHECK(sh_out(iptables + "-S FORWARD") == before);
    }
    SECTION("a host without iptables' tables") {
        a.host.run([&] {
            auto net = a.setup_node();
            CHECK_FALSE(contains(a.nft("list ruleset"), "table ip filter"));
        });
    }
}

TEST_CASE(
    "iptables-legacy's filter table, which no nftables rule reaches, is noticed in the host") {
    Agent a("y");
    a.host.run([&] { CHECK_FALSE(legacy_filter_table_present()); });
    REQUIRE(sh("ip netns exec " + a.host.name() + " iptables-legacy -P FORWARD DROP") == 0);
    a.host.run([&] { CHECK(legacy_filter_table_present()); });
}

TEST_CASE("configure_tun addresses the TUN and routes the service and container networks to it") {
    Agent a("t");
    REQUIRE(sh("ip -n " + a.host.name() + " tuntap add dev goProxyTun mode tun") == 0);
    std::string before = a.state();
    a.host.run([&] {
        auto net = a.setup_node();
        auto missing = net->configure_tun("noSuchTun", *Ipv4::parse("172.19.1.254"), 1450);
        REQUIRE_FALSE(missing);
        CHECK(missing.error().code == Errc::not_found);
        CHECK(contains(missing.error().message, "noSuchTun"));

        REQUIRE(net->configure_tun("goProxyTun", *Ipv4::parse("172.19.1.254"), 1450));
        CHECK(contains(a.ip("-o addr show goProxyTun"), "inet 172.19.1.254/32"));
        CHECK(contains(a.ip("link show goProxyTun"), "mtu 1450"));
        CHECK(contains(a.ip("link show goProxyTun"), ",UP"));
        std::string routes = a.ip("route show");
        CHECK(contains(routes, "172.30.0.0/16 dev goProxyTun"));
        CHECK(contains(routes, "172.16.0.0/12 dev goProxyTun"));
        CHECK(contains(routes, "172.19.1.0/24 dev goProxyBridge"));
        CHECK(*read_sysctl(rp_filter_key("goProxyTun")) == "0");
        // The local subnet stays on the bridge, everything else of the container network on the
        // TUN.
        CHECK(contains(a.ip("route get 172.19.1.7"), "dev goProxyBridge"));
        CHECK(contains(a.ip("route get 172.19.2.7"), "dev goProxyTun"));
        CHECK(contains(a.ip("route get 172.30.0.4"), "dev goProxyTun"));
        // Repeatable.
        REQUIRE(net->configure_tun("goProxyTun", *Ipv4::parse("172.19.1.254"), 1450));
        // The TUN address never goes to a namespace.
        CHECK(net->pool().in_use(*Ipv4::parse("172.19.1.254")));
        net->teardown();
    });
    std::string after = a.state();
    CHECK_FALSE(contains(after, "172.30.0.0/16"));
    CHECK_FALSE(contains(after, "172.19.1.254"));
    CHECK_FALSE(contains(after, "goProxyBridge"));
    sh("ip -n " + a.host.name() + " link del goProxyTun");
}

TEST_CASE("node setup refuses a prefix that does not fit interface names") {
    Agent a("p");
    a.config.prefix = "muchtoolong";
    a.host.run([&] {
        auto net = NodeNetwork::setup(a.config);
        REQUIRE_FALSE(net);
        CHECK(net.error().code == Errc::invalid_argument);
        CHECK(contains(net.error().message, "1 to 9 characters"));
    });
}
