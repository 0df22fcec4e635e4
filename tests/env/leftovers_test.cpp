// Startup cleanup after an agent that was killed, and attaching by PID.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "env_fixture.hpp"

using namespace nm;
using namespace nm::test;

namespace {

// Forks an agent into the host that attaches two namespaces (one with a port mapping) and
// reports on `ready` before it waits to be killed.
pid_t start_agent(const Agent& a) {
    int fds[2];
    if (::pipe(fds) != 0) return -1;
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(fds[0]);
        int ns = ::open(("/run/netns/" + a.host.name()).c_str(), O_RDONLY);
        if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) ::_exit(1);
        auto net = NodeNetwork::setup(a.config);
        if (!net) ::_exit(2);
        AttachOptions o;
        o.ports = *parse_port_mappings("8080:80");
        if (!net->attach_new_namespace("one", o) || !net->attach_new_namespace("two")) ::_exit(3);
        char ok = 1;
        (void)!::write(fds[1], &ok, 1);
        for (;;) ::pause();
    }
    ::close(fds[1]);
    char ok = 0;
    bool ready = ::read(fds[0], &ok, 1) == 1;
    ::close(fds[0]);
    if (!ready) {
        ::waitpid(pid, nullptr, 0);
        return -1;
    }
    return pid;
}

}  // namespace

TEST_CASE("startup removes what a killed agent left behind and says what it removed") {
    Agent a("k");
    // Docker's FORWARD policy: the agent also left accept rules in iptables' chain.
    REQUIRE(sh("ip netns exec " + a.host.name() + " iptables -P FORWARD DROP") == 0);
    std::string clean = a.state();
    pid_t agent = start_agent(a);
    REQUIRE(agent > 0);
    ::kill(agent, SIGKILL);
    ::waitpid(agent, nullptr, 0);
    CHECK(a.namespaces().size() == 2);
    CHECK(contains(a.ip("-o link show"), a.prefix + "v0"));

    a.host.run([&] {
        const std::string all = a.remove_leftovers();
        INFO(all);
        CHECK(contains(all, "veth " + a.prefix + "v0"));
        CHECK(contains(all, "veth " + a.prefix + "v1"));
        CHECK(contains(all, "bridge goProxyBridge"));
        CHECK(contains(all, "namespace " + a.prefix + "one"));
        CHECK(contains(all, "namespace " + a.prefix + "two"));
        CHECK(contains(all, "nftables table ip netmanager_" + a.prefix));
        CHECK(contains(all, "2 rules tagged netmanager_" + a.prefix + " in iptables' FORWARD"));
    });
    CHECK(a.namespaces().empty());
    // ip_forward stays as the dead agent set it; everything with a name is gone.
    CHECK(a.ip("-o link show") == sh_out("ip -n " + a.host.name() + " -o link show"));
    CHECK_FALSE(contains(a.ip("-o link show"), a.prefix));
    CHECK_FALSE(contains(a.nft("list ruleset"), "netmanager_"));

    // A restarted agent sets up as if nothing had happened.
    a.host.run([&] {
        auto net = a.setup_node();
        CHECK(net->attach_new_namespace("one"));
    });
    CHECK(a.namespaces().empty());
}

TEST_CASE("a process started under unshare --net is attached by its pid") {
    Agent a("u");
    NetnsProcess process;
    const pid_t pid = process.pid;
    const std::string& ns_path = process.ns_path;
    auto inside = [&](const std::string& args) {
        return sh_out("nsenter --net=" + ns_path + " ip " + args + " 2>&1");
    };

    a.host.run([&] {
        auto net = a.setup_node();
        auto att = net->attach_pid(pid, with_ports("8080:80"));
        REQUIRE(att);
        CHECK(att->pid == pid);
        CHECK(att->netns.empty());
        CHECK(contains(inside("-o addr show eth0"), "inet 172.19.1.2/24"));
        CHECK(contains(inside("route show"), "172.30.0.0/16 via 172.19.1.1 dev eth0"));
        CHECK(contains(inside("link show lo"), ",UP"));
        CHECK(ping(ns_path, "172.19.1.1"));
        CHECK(tcp_roundtrip(a.host.name(), ns_path, "172.19.1.1", 8080, 80));
        REQUIRE(net->detach(att->host_link));
        CHECK_FALSE(contains(inside("link show"), "eth0"));
        CHECK_FALSE(contains(a.ip("-o link show"), att->host_link));
    });
}

TEST_CASE("detaching a process whose namespace died with it is no error") {
    Agent a("w");
    pid_t pid = ::fork();
    if (pid == 0) {
        ::execlp("unshare", "unshare", "--net", "sleep", "60", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    REQUIRE(pid > 0);
    std::string mine = sh_out("readlink /proc/self/ns/net");
    std::string ns_path = "/proc/" + std::to_string(pid) + "/ns/net";
    for (int i = 0; i < 200 && sh_out("readlink " + ns_path) == mine; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    a.host.run([&] {
        auto net = a.setup_node();
        auto att = net->attach_pid(pid);
        REQUIRE(att);
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        // The namespace is freed asynchronously; its veth goes with it.
        for (int i = 0; i < 200 && contains(a.ip("-o link show"), att->host_link); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        CHECK(net->detach(att->host_link));
        CHECK_FALSE(net->pool().in_use(att->address));
    });
}
