// Attaching namespaces: what the kernel shows afterwards, traffic, port mappings, detach.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "env_fixture.hpp"

using namespace nm;
using namespace nm::test;

TEST_CASE("an attached namespace shows its address, routes and links") {
    Agent a("a");
    a.host.run([&] {
        auto net = a.setup_node();
        auto att = net->attach_new_namespace("web");
        REQUIRE(att);
        CHECK(att->netns == a.prefix + "web");
        CHECK(att->address == *Ipv4::parse("172.19.1.2"));
        CHECK(att->host_link == a.prefix + "v0");

        std::string addr = Agent::ip_in(att->netns, "-o addr show eth0");
        CHECK(contains(addr, "inet 172.19.1.2/24"));
        std::string links = Agent::ip_in(att->netns, "link show");
        CHECK(contains(links, "lo: <LOOPBACK,UP,LOWER_UP>"));
        CHECK(contains(links, "eth0@"));
        CHECK(contains(links, "mtu 1450"));
        std::string routes = Agent::ip_in(att->netns, "route show");
        CHECK(contains(routes, "172.16.0.0/12 via 172.19.1.1 dev eth0"));
        CHECK(contains(routes, "172.30.0.0/16 via 172.19.1.1 dev eth0"));
        CHECK(contains(routes, "default via 172.19.1.1 dev eth0"));
        CHECK(contains(routes, "172.19.1.0/24 dev eth0"));

        std::string host_end = a.ip("-d link show " + att->host_link);
        CHECK(contains(host_end, "master goProxyBridge"));
        CHECK(contains(host_end, "mtu 1450"));
        CHECK(contains(host_end, "veth"));
        CHECK(contains(host_end, "UP"));

        // A specific address inside the subnet.
        AttachOptions want;
        want.address = *Ipv4::parse("172.19.1.77");
        auto second = net->attach_new_namespace("db", want);
        REQUIRE(second);
        CHECK(contains(Agent::ip_in(second->netns, "-o addr show eth0"), "inet 172.19.1.77/24"));
        CHECK(net->attachments().size() == 2);
    });
}

TEST_CASE("two attached namespaces reach each other by ping and TCP over the bridge") {
    Agent a("b");
    a.host.run([&] {
        auto net = a.setup_node();
        auto one = net->attach_new_namespace("one");
        auto two = net->attach_new_namespace("two");
        REQUIRE(one);
        REQUIRE(two);
        CHECK(ping(one->netns, two->address.to_string()));
        CHECK(ping(two->netns, "172.19.1.1"));  // the bridge, their gateway
        CHECK(tcp_roundtrip(one->netns, two->netns, two->address.to_string(), 7001));
        // Nothing answers an address nobody has.
        CHECK_FALSE(ping(one->netns, "172.19.1.200"));
    });
}

TEST_CASE("detach leaves nothing behind and frees the address") {
    Agent a("d");
    a.host.run([&] {
        auto net = a.setup_node();
        std::string before = a.state();
        std::size_t free_before = net->pool().free_count();
        auto att = net->attach_new_namespace("gone", with_ports("8080:80/tcp;5353:53/udp"));
        REQUIRE(att);
        CHECK(a.namespaces().size() == 1);
        REQUIRE(net->detach(att->host_link));
        CHECK(a.namespaces().empty());
        CHECK_FALSE(contains(a.nft("list ruleset"), "8080"));
        CHECK(a.settles_to(before));
        CHECK(net->pool().free_count() == free_before);
        CHECK(net->attachments().empty());
        auto again = net->detach(att->host_link);
        REQUIRE_FALSE(again);
        CHECK(again.error().code == Errc::not_found);
        // The freed address is handed out again.
        auto next = net->attach_new_namespace("next");
        REQUIRE(next);
        CHECK(next->address == att->address);
    });
}

TEST_CASE("port mappings DNAT the node's host port into the namespace and go away on detach") {
    Agent a("m");
    a.host.run([&] {
        auto net = a.setup_node();
        auto att = net->attach_new_namespace("srv", with_ports("8080:80/tcp;9000:9001/udp"));
        REQUIRE(att);
        std::string table = a.nft("list table ip " + net->table_name());
        CHECK(contains(table, "8080 : 172.19.1.2 . 80"));
        CHECK(contains(table, "9000 : 172.19.1.2 . 9001"));
        // From the node to its own address: the output hook maps 8080 to the namespace's 80.
        CHECK(tcp_roundtrip(a.host.name(), att->netns, "172.19.1.1", 8080, 80));
        // A second namespace may not take the same host port.
        auto clash = net->attach_new_namespace("clash", with_ports("8080:81"));
        REQUIRE_FALSE(clash);
        CHECK(clash.error().code == Errc::conflict);
        CHECK(contains(clash.error().message, "already mapped to 172.19.1.2:80"));

        REQUIRE(net->detach(att->host_link));
        table = a.nft("list table ip " + net->table_name());
        CHECK_FALSE(contains(table, "8080 :"));
        CHECK_FALSE(contains(table, "172.19.1.2"));
    });
}

TEST_CASE(
    "a bare port mapping \"9080\" DNATs the node's port 9080 to the same port of the namespace") {
    Agent a("n");
    a.host.run([&] {
        auto net = a.setup_node();
        auto att = net->attach_new_namespace("web", with_ports("9080"));
        REQUIRE(att);
        const std::string lan = add_lan(a, "192.168.77.1/24", "192.168.77.2/24");
        // The app: an HTTP server on 9080 inside the instance's namespace.
        HttpServer server(att->netns, 9080, "0.0.0.0", "web-9080");
        const std::string curl = "nsenter --net=/run/netns/" + lan +
                                 " curl -sS --max-time 2 http://192.168.77.1:9080/id 2>&1";
        std::string answer = output_within(curl, "web-9080\n");
        CHECK(answer == "web-9080\n");
        CHECK(contains(a.nft("list table ip " + net->table_name()),
                       "9080 : " + att->address.to_string() + " . 9080"));
        // Gone with the instance.
        REQUIRE(net->detach(att->host_link));
        CHECK(sh_out(curl) != "web-9080\n");
    });
}
