// Unikernel namespaces (protocol.md, /unikernel/deploy): the guest side inside, its NAT, undo
// on failure, and removal after a crash.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "env_fixture.hpp"

using namespace nm;
using namespace nm::test;

namespace {
std::string inside(const std::string& ns, const std::string& command) {
    return sh_out("nsenter --net=/run/netns/" + ns + " " + command + " 2>&1");
}
}  // namespace

TEST_CASE("a unikernel namespace has virbr0 with tap0 and NATs between its address and the guest") {
    Agent a("k");
    const std::string name = a.prefix + ".ns.uni.default.instance.3";
    a.host.run([&] {
        auto net = a.setup_node();
        auto att = net->attach_unikernel(name);
        REQUIRE(att);
        CHECK(att->netns == name);  // exactly as given: the node engine finds it by this name
        const std::string nsip = att->address.to_string();
        const std::string gateway = a.config.subnet.host(1).to_string();
        CHECK(contains(inside(name, "ip -o addr show eth0"), "inet " + nsip + "/"));
        CHECK(contains(inside(name, "ip route show default"),
                       "default via " + gateway + " dev eth0"));
        CHECK(contains(inside(name, "ip -o addr show virbr0"), "inet 192.168.1.1/30"));
        std::string tap = inside(name, "ip -d link show tap0");
        CHECK(contains(tap, "master virbr0"));
        CHECK(contains(tap, "tun type tap"));
        CHECK(contains(tap, ",UP"));
        CHECK(inside(name, "cat /proc/sys/net/ipv4/ip_forward") == "1\n");
        std::string nat = inside(name, "nft list table ip " + net->table_name());
        CHECK(contains(nat, "iifname \"eth0\" dnat to 192.168.1.2"));
        CHECK(contains(nat, "oifname \"eth0\" snat to " + nsip));

        REQUIRE(net->detach(att->host_link));
        CHECK(a.namespaces().empty());
    });
}

TEST_CASE("a failure at any step of attaching a unikernel leaves nothing behind") {
    Agent a("j");
    int step = GENERATE(range(0, 19));
    a.host.run([&] {
        auto net = a.setup_node();
        auto attach = [&](const AttachOptions& o) {
            return net->attach_unikernel(a.prefix + ".ns.uni.default.instance.0", o);
        };
        if (!attach_fails_cleanly(a, *net, step, 18, attach)) return;
        CHECK(net->attachments().empty());
    });
}

TEST_CASE("startup removes the unikernel namespaces a killed agent left, and no one else's") {
    Agent a("l");
    // Unikernel names carry no prefix; these two start with another letter than the agent's.
    const std::string ours = "x" + a.prefix + ".ns.uni.default.instance.0";
    const std::string theirs = "y" + a.prefix + ".ns.uni.default.instance.0";
    REQUIRE(sh("ip netns add " + theirs) == 0);
    pid_t agent = ::fork();
    if (agent == 0) {
        int ns = ::open(("/run/netns/" + a.host.name()).c_str(), O_RDONLY);
        if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) ::_exit(1);
        auto net = NodeNetwork::setup(a.config);
        if (!net || !net->attach_unikernel(ours)) ::_exit(2);
        ::kill(::getpid(), SIGKILL);  // dies without teardown
    }
    int status = 0;
    ::waitpid(agent, &status, 0);
    REQUIRE(WIFSIGNALED(status));
    REQUIRE(::access(("/run/netns/" + ours).c_str(), F_OK) == 0);

    a.host.run([&] {
        const std::string all = a.remove_leftovers();
        INFO(all);
        CHECK(contains(all, "namespace " + ours));
        CHECK_FALSE(contains(all, theirs));
    });
    CHECK(::access(("/run/netns/" + ours).c_str(), F_OK) != 0);
    CHECK(::access(("/run/netns/" + theirs).c_str(), F_OK) == 0);
    sh("ip netns del " + theirs);
    sh("ip netns del " + ours + " 2>/dev/null");
}
