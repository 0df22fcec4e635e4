// IPv6 on a dual-stack node: bridge, namespaces, TUN, forwarding, port mappings, undo and
// leftovers, checked with the kernel's own tools (ip, ping -6, curl -6, nft).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "env/sysctl.hpp"
#include "env_fixture.hpp"

using namespace nm;
using namespace nm::test;

namespace {

// An agent whose node has the IPv6 subnet fc00::100/120.
struct DualStack : Agent {
    explicit DualStack(const std::string& tag) : Agent(tag) {
        config.subnet_v6 = *Cidr6::parse("fc00::100/120");
    }
};

bool ping6(const std::string& ns, const std::string& dst) {
    return sh("ip netns exec " + ns + " ping -6 -n -q -c 1 -W 1 " + dst + " >/dev/null 2>&1") == 0;
}

}  // namespace

TEST_CASE("a dual-stack node gives the bridge and each namespace an IPv6 address and routes") {
    DualStack a("6a");
    a.host.run([&] {
        auto net = a.setup_node();
        CHECK(contains(a.ip("-6 -o addr show dev goProxyBridge"), "inet6 fc00::101/120"));
        CHECK(*read_sysctl("net.ipv6.conf.all.forwarding") == "1");

        auto one = net->attach_new_namespace("one");
        auto two = net->attach_new_namespace("two");
        REQUIRE(one);
        REQUIRE(two);
        REQUIRE(one->address_v6);
        CHECK(one->address_v6->to_string() == "fc00::102");
        CHECK(two->address_v6->to_string() == "fc00::103");
        CHECK(one->prefix_v6 == 120);

        std::string addr = Agent::ip_in(one->netns, "-6 -o addr show dev eth0 scope global");
        CHECK(contains(addr, "inet6 fc00::102/120"));
        CHECK_FALSE(contains(addr, "tentative"));  // no duplicate address detection
        std::string routes = Agent::ip_in(one->netns, "-6 route show");
        CHECK(contains(routes, "fc00::/7 via fc00::101 dev eth0"));
        CHECK(contains(routes, "fdff::/16 via fc00::101 dev eth0"));
        CHECK(contains(routes, "default via fc00::101 dev eth0"));
        CHECK(contains(routes, "fc00::100/120 dev eth0"));
        // IPv4 as before.
        CHECK(contains(Agent::ip_in(one->netns, "-4 -o addr show dev eth0"), "172.19.1.2/24"));

        CHECK(ping6(one->netns, "fc00::101"));  // the bridge, the namespaces' gateway
        CHECK(ping6(one->netns, "fc00::103"));  // the other namespace over the bridge
        CHECK(ping6(two->netns, "fc00::102"));
        CHECK_FALSE(ping6(one->netns, "fc00::1fe"));  // nobody has it
    });
}

TEST_CASE("a detached namespace frees its IPv6 address and the next one takes it again") {
    DualStack a("6d");
    a.host.run([&] {
        auto net = a.setup_node();
        std::string before = a.state();
        auto att = net->attach_new_namespace("gone");
        REQUIRE(att);
        REQUIRE(net->detach(att->host_link));
        CHECK(a.settles_to(before));
        auto next = net->attach_new_namespace("next");
        REQUIRE(next);
        CHECK(next->address_v6 == att->address_v6);
    });
}

TEST_CASE("without an IPv6 subnet the node and its namespaces stay IPv4 only") {
    Agent a("6n");
    a.host.run([&] {
        auto net = a.setup_node();
        CHECK_FALSE(contains(a.ip("-6 -o addr show dev goProxyBridge scope global"), "inet6"));
        auto att = net->attach_new_namespace("v4");
        REQUIRE(att);
        CHECK_FALSE(att->address_v6);
        CHECK_FALSE(contains(Agent::ip_in(att->netns, "-6 -o addr show scope global"), "inet6"));
        CHECK(contains(a.nft("list tables"), "table ip " + net->table_name()));
        CHECK_FALSE(contains(a.nft("list tables"), "table ip6 " + net->table_name()));
    });
}

TEST_CASE("the TUN gets fcef::dead:beef/7 and the IPv6 service and container routes") {
    DualStack a("6t");
    REQUIRE(sh("ip -n " + a.host.name() + " tuntap add dev goProxyTun mode tun") == 0);
    a.host.run([&] {
        std::string forwarding = *read_sysctl("net.ipv6.conf.all.forwarding");
        {
            auto net = a.setup_node();
            REQUIRE(net->configure_tun("goProxyTun", *Ipv4::parse("172.19.1.254"), 1450));
            CHECK(contains(a.ip("-6 -o addr show dev goProxyTun"), "inet6 fcef::dead:beef/7"));
            std::string routes = a.ip("-6 route show");
            CHECK(contains(routes, "fdff::/16 dev goProxyTun"));
            CHECK(contains(routes, "fc00::/7 dev goProxyTun"));
            // The node's /120 stays on the bridge, the rest of fc00::/7 and the ServiceIPs go
            // to the TUN.
            CHECK(contains(a.ip("-6 route get fc00::107"), "dev goProxyBridge"));
            CHECK(contains(a.ip("-6 route get fc00::207"), "dev goProxyTun"));
            CHECK(contains(a.ip("-6 route get fdff:2000::3"), "dev goProxyTun"));
            // Repeatable.
            REQUIRE(net->configure_tun("goProxyTun", *Ipv4::parse("172.19.1.254"), 1450));
            CHECK(contains(a.ip("-6 -o addr show dev goProxyTun"), "inet6 fcef::dead:beef/7"));
        }  // teardown
        CHECK(*read_sysctl("net.ipv6.conf.all.forwarding") == forwarding);
    });
    // Teardown takes the addresses and routes, not the device (nor its MTU).
    std::string after = a.state();
    CHECK_FALSE(contains(after, "fcef::dead:beef"));
    CHECK_FALSE(contains(after, "fdff::/16"));
    CHECK_FALSE(contains(after, "fc00::"));
    CHECK_FALSE(contains(a.ip("-6 route show"), "goProxyTun"));
    sh("ip -n " + a.host.name() + " link del goProxyTun");
}

TEST_CASE("an IPv6 port mapping DNATs the node's host port to the namespace, reached by curl -6") {
    DualStack a("6m");
    a.host.run([&] {
        auto net = a.setup_node();
        auto att = net->attach_new_namespace("web", with_ports("9080;9000:9001/udp"));
        REQUIRE(att);
        REQUIRE(att->address_v6);
        const std::string v6 = att->address_v6->to_string();
        std::string table = a.nft("list table ip6 " + net->table_name());
        CHECK(contains(table, "9080 : " + v6 + " . 9080"));
        CHECK(contains(table, "9000 : " + v6 + " . 9001"));
        CHECK(contains(a.nft("list table ip " + net->table_name()),
                       "9080 : " + att->address.to_string() + " . 9080"));

        // A machine on the node's LAN, over IPv6.
        const std::string lan = add_lan(a, "fd77::1/64 nodad", "fd77::2/64 nodad");
        HttpServer server(att->netns, 9080, "::", "web-v6");
        const std::string curl = "nsenter --net=/run/netns/" + lan +
                                 " curl -6 -sS --max-time 2 http://[fd77::1]:9080/id 2>&1";
        std::string answer = output_within(curl, "web-v6\n");
        CHECK(answer == "web-v6\n");
        // From the node to its own address (the output hook), to the bridge's fc00::101.
        CHECK(sh_out("nsenter --net=/run/netns/" + a.host.name() +
                     " curl -6 -sS --max-time 2 http://[fc00::101]:9080/id 2>&1") == "web-v6\n");

        REQUIRE(net->detach(att->host_link));
        CHECK(sh_out(curl) != "web-v6\n");
        CHECK_FALSE(contains(a.nft("list table ip6 " + net->table_name()), v6));
    });
}

TEST_CASE("ip6tables' FORWARD chain gets the bridge accepts, and teardown takes them out") {
    DualStack a("6f");
    REQUIRE(sh("ip netns exec " + a.host.name() + " ip6tables -P FORWARD DROP") == 0);
    a.host.run([&] {
        auto net = a.setup_node();
        std::string chain = a.nft("list chain ip6 filter FORWARD");
        CHECK(contains(chain,
                       "iifname \"goProxyBridge\" counter packets 0 bytes 0 accept comment \"" +
                           net->table_name() + "\""));
        CHECK(contains(chain, "oifname \"goProxyBridge\""));
        CHECK(sh("ip netns exec " + a.host.name() + " ip6tables -S FORWARD >/dev/null") == 0);
        net->teardown();
        CHECK_FALSE(contains(a.nft("list chain ip6 filter FORWARD"), net->table_name()));
    });
}

TEST_CASE("a failure at any step of dual-stack node setup leaves nothing behind") {
    DualStack a("6g");
    int step = GENERATE(range(0, 9));
    a.config.fail_at_step = step;
    std::string before = a.state();
    a.host.run([&] {
        std::string forwarding = *read_sysctl("net.ipv6.conf.all.forwarding");
        auto net = NodeNetwork::setup(a.config);
        INFO("step " << step);
        if (step == 8) {  // past the last step: it works, so every step above was covered
            REQUIRE(net);
            return;
        }
        REQUIRE_FALSE(net);
        CHECK(contains(net.error().message, "injected failure"));
        CHECK(*read_sysctl("net.ipv6.conf.all.forwarding") == forwarding);
    });
    if (step < 8) CHECK(a.state() == before);
}

TEST_CASE("a failure at any step of attaching a dual-stack namespace leaves nothing behind") {
    DualStack a("6h");
    int step = GENERATE(range(0, 16));
    a.host.run([&] {
        auto net = a.setup_node();
        auto attach = [&](const AttachOptions& o) { return net->attach_new_namespace("x", o); };
        if (!attach_fails_cleanly(a, *net, step, 15, attach)) return;
        CHECK(net->attachments().empty());
        // The IPv6 address it took is free again: the next namespace gets base+2.
        auto next = net->attach_new_namespace("y");
        REQUIRE(next);
        CHECK(next->address_v6->to_string() == "fc00::102");
    });
}
