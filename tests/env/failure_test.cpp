// Failures: every step of setup and attach undone, and the clear errors of bad requests.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "env/sysctl.hpp"
#include "env_fixture.hpp"

using namespace nm;
using namespace nm::test;

TEST_CASE("a failure at any step of node setup leaves nothing behind") {
    Agent a("f");
    int step = GENERATE(range(0, 6));
    a.config.fail_at_step = step;
    a.config.uplink = "up0";
    REQUIRE(sh("ip netns exec " + a.host.name() + " iptables -P FORWARD DROP") == 0);
    std::string before = a.state();
    a.host.run([&] {
        std::string forward = *read_sysctl("net.ipv4.ip_forward");
        auto net = NodeNetwork::setup(a.config);
        INFO("step " << step);
        REQUIRE_FALSE(net);
        CHECK(contains(net.error().message, "injected failure"));
        CHECK(*read_sysctl("net.ipv4.ip_forward") == forward);
    });
    CHECK(a.state() == before);
}

TEST_CASE("a failure at any step of attaching a new namespace leaves nothing behind") {
    Agent a("g");
    int step = GENERATE(range(0, 12));
    a.host.run([&] {
        auto net = a.setup_node();
        auto keep = net->attach_new_namespace("keep");  // an earlier attachment must survive
        REQUIRE(keep);
        auto attach = [&](const AttachOptions& o) { return net->attach_new_namespace("x", o); };
        if (!attach_fails_cleanly(a, *net, step, 11, attach)) return;
        CHECK(net->attachments().size() == 1);
        CHECK(ping(keep->netns, "172.19.1.1"));
    });
}

TEST_CASE("an existing namespace name is refused and nothing changes") {
    Agent a("e");
    a.host.run([&] {
        auto net = a.setup_node();
        REQUIRE(sh("ip netns add " + a.prefix + "dup") == 0);
        std::string before = a.state();
        auto att = net->attach_new_namespace("dup");
        REQUIRE_FALSE(att);
        CHECK(att.error().code == Errc::exists);
        CHECK(contains(att.error().message, "\"" + a.prefix + "dup\" already exists"));
        CHECK(a.state() == before);
        CHECK(net->pool().free_count() == 256 - 4);
    });
}

TEST_CASE("an existing link name fails with the kernel's reason and nothing changes") {
    Agent a("l");
    a.host.run([&] {
        auto net = a.setup_node();
        REQUIRE(sh("ip link add " + a.prefix + "v0 type bridge") ==
                0);  // in the host: we run there
        std::string before = a.state();
        auto att = net->attach_new_namespace("web");
        REQUIRE_FALSE(att);
        CHECK(att.error().code == Errc::exists);
        CHECK(att.error().message.starts_with("netlink: File exists (" + a.prefix + "v0)"));
        CHECK(a.state() == before);
        CHECK(a.namespaces().empty());
        // The next attempt takes the next name.
        CHECK(net->attach_new_namespace("web"));
    });
}

TEST_CASE("an exhausted address pool is refused and nothing changes") {
    Agent a("x");
    a.config.subnet = *Cidr::parse("172.19.1.0/29");  // .2 to .6
    a.host.run([&] {
        auto net = a.setup_node();
        for (int i = 0; i < 5; ++i) REQUIRE(net->attach_new_namespace("n" + std::to_string(i)));
        std::string before = a.state();
        auto att = net->attach_new_namespace("n5");
        REQUIRE_FALSE(att);
        CHECK(att.error().code == Errc::exhausted);
        CHECK(contains(att.error().message, "172.19.1.0/29 is exhausted"));
        CHECK(a.state() == before);
        // A taken specific address is refused too.
        REQUIRE(net->detach(a.prefix + "v2"));
        AttachOptions o;
        o.address = *Ipv4::parse("172.19.1.2");
        auto taken = net->attach_new_namespace("n6", o);
        REQUIRE_FALSE(taken);
        CHECK(taken.error().code == Errc::exists);
        o.address = *Ipv4::parse("10.1.1.1");
        auto outside = net->attach_new_namespace("n6", o);
        REQUIRE_FALSE(outside);
        CHECK(outside.error().code == Errc::invalid_argument);
        o.address = *Ipv4::parse("172.19.1.4");  // the freed one
        CHECK(net->attach_new_namespace("n6", o));
    });
}

TEST_CASE("attaching a vanished process is refused and nothing changes") {
    Agent a("v");
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    REQUIRE(pid > 0);
    ::waitpid(pid, nullptr, 0);
    a.host.run([&] {
        auto net = a.setup_node();
        std::string before = a.state();
        auto att = net->attach_pid(pid);
        REQUIRE_FALSE(att);
        CHECK(att.error().code == Errc::not_found);
        CHECK(contains(att.error().message, "process " + std::to_string(pid) + " does not exist"));
        CHECK(a.state() == before);
        CHECK(net->pool().free_count() == 256 - 4);
    });
}

TEST_CASE("a bad port mapping is refused and nothing changes") {
    Agent a("q");
    a.host.run([&] {
        auto net = a.setup_node();
        std::string before = a.state();
        AttachOptions o;
        o.ports = {PortMapping{50103, 50103, L4Proto::udp}};  // the tunnel's port
        auto tunnel = net->attach_new_namespace("p", o);
        REQUIRE_FALSE(tunnel);
        CHECK(tunnel.error().code == Errc::conflict);
        CHECK(contains(tunnel.error().message, "is the tunnel's"));
        o.ports = {PortMapping{0, 80, L4Proto::tcp}};
        auto zero = net->attach_new_namespace("p", o);
        REQUIRE_FALSE(zero);
        CHECK(zero.error().code == Errc::invalid_argument);
        CHECK(a.state() == before);
        CHECK(net->pool().free_count() == 256 - 4);
    });
}

TEST_CASE("a failure at any step of configuring the TUN leaves it as it was") {
    Agent a("c");
    REQUIRE(sh("ip -n " + a.host.name() + " tuntap add dev goProxyTun mode tun") == 0);
    int step = GENERATE(range(0, 7));
    a.host.run([&] {
        auto net = a.setup_node();
        std::string before = a.state();
        std::string link_before = a.ip("-o link show goProxyTun | awk '{print $3, $5}'");
        net->fail_at_step_for_testing(step);
        auto r = net->configure_tun("goProxyTun", *Ipv4::parse("172.19.1.254"), 1400);
        INFO("step " << step);
        if (step == 6) {  // past the last step
            REQUIRE(r);
            return;
        }
        REQUIRE_FALSE(r);
        CHECK(contains(r.error().message, "injected failure"));
        CHECK(a.state() == before);
        CHECK(a.ip("-o link show goProxyTun | awk '{print $3, $5}'") == link_before);
    });
}

TEST_CASE("a failure at any step of attaching a process leaves nothing behind") {
    Agent a("r");
    int step = GENERATE(range(0, 12));
    NetnsProcess process;
    const pid_t pid = process.pid;
    const std::string& ns_path = process.ns_path;
    auto inside = [&] {
        return sh_out("nsenter --net=" + ns_path + " ip -o link show | awk '{print $2}'") +
               sh_out("nsenter --net=" + ns_path + " ip -4 -o addr show");
    };
    a.host.run([&] {
        auto net = a.setup_node();
        std::string inside_before = inside();
        auto attach = [&](const AttachOptions& o) { return net->attach_pid(pid, o); };
        if (!attach_fails_cleanly(a, *net, step, 11, attach)) return;
        CHECK(inside() == inside_before);  // lo may be up now: that is all that stays
    });
}
