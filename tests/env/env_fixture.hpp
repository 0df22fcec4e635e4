#pragma once
// A simulated host plus the NodeNetworkConfig of an agent running in it, with names unique to
// this test process: host "h<tag><pid>", agent prefix "a<tag><pid>".
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <sstream>
#include <string>
#include <thread>

#include "env/netns.hpp"
#include "env/node_network.hpp"
#include "sim_host.hpp"

// A failed Result prints its error in assertion output.
namespace Catch {
template <class T>
struct StringMaker<tl::expected<T, nm::Error>> {
    static std::string convert(const tl::expected<T, nm::Error>& r) {
        return r ? std::string("ok") : "error: " + r.error().message;
    }
};
}  // namespace Catch

namespace nm::test {

struct Agent {
    explicit Agent(const std::string& tag)
        : host(unique_prefix("h" + tag)), prefix(unique_prefix("a" + tag)) {
        config.prefix = prefix;
        // The tests' own plan (172.x), given explicitly: the defaults are the reference's 10.x.
        config.subnet = *Cidr::parse("172.19.1.0/24");
        config.networks.container_network = *Cidr::parse("172.16.0.0/12");
        config.networks.service_network = *Cidr::parse("172.30.0.0/16");
        config.tun_ip = *Ipv4::parse("172.19.1.254");
    }
    // The node network set up in the host (call it on the host's thread); the test ends here
    // when that fails.
    Result<NodeNetwork> setup_node() const {
        auto net = NodeNetwork::setup(config);
        REQUIRE(net);
        return net;
    }
    // What remove_leftovers says it removed, a line each (on the host's thread).
    std::string remove_leftovers() const {
        auto removed = NodeNetwork::remove_leftovers(config);
        REQUIRE(removed);
        std::string all;
        for (const auto& line : *removed) all += line + "\n";
        return all;
    }

    ~Agent() {
        // Whatever a failed test left in /run/netns under our prefix.
        for (const std::string& ns : list_named_netns())
            if (ns.starts_with(prefix)) (void)delete_named_netns(ns);
    }

    // `ip -n <host> ...` output.
    std::string ip(const std::string& args) const {
        return sh_out("ip -n " + host.name() + " " + args);
    }
    // `ip -n <ns> ...` output.
    static std::string ip_in(const std::string& ns, const std::string& args) {
        return sh_out("ip -n " + ns + " " + args + " 2>&1");
    }
    std::string nft(const std::string& args) const {
        return sh_out("ip netns exec " + host.name() + " nft " + args + " 2>&1");
    }
    // /run/netns entries carrying the agent's prefix.
    std::vector<std::string> namespaces() const {
        std::vector<std::string> out;
        for (const std::string& ns : list_named_netns())
            if (ns.starts_with(prefix)) out.push_back(ns);
        std::sort(out.begin(), out.end());
        return out;
    }
    // Everything an operation could leave behind in the host, as text to compare.
    std::string state() const {
        std::ostringstream s;
        // Names, masters, MTUs and addresses; not carrier flags, which follow the ports.
        s << ip("-o link show | awk '{m=\"\"; for (i = 1; i < NF; i++) if ($i == \"master\") m = "
                "$(i+1); "
                "print $2, $5, m}'")
          << ip("-4 -o addr show | awk '{print $2, $4}'") << ip("route show | sed 's/ linkdown//'")
          << ip("-6 -o addr show scope global | awk '{print $2, $4}'")
          << ip("-6 route show | grep -v '^fe80' | sed 's/ linkdown//'") << nft("list ruleset");
        for (const std::string& ns : namespaces()) s << "netns " << ns << "\n";
        return s.str();
    }

    // state() == want within `seconds`: the kernel removes a detached namespace's veth pair with
    // the namespace, in the background.
    bool settles_to(const std::string& want, double seconds = 5) const {
        for (int i = 0; i < seconds * 50; ++i) {
            if (state() == want) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return state() == want;
    }

    SimHost host;
    std::string prefix;
    NodeNetworkConfig config;
};

inline bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// Attach options mapping the host ports of `spec` ("8080:80/tcp;9000:9001/udp").
inline AttachOptions with_ports(const char* spec) {
    AttachOptions o;
    o.ports = *parse_port_mappings(spec);
    return o;
}

// One step of an attach's failure sweep: `attach(options)` (mapping port 8080, so the firewall
// steps run too) while its step `step` fails. The step past the last (`steps`) must work, so
// every step before it was covered: false. Any other fails, saying so, and leaves the host and
// the address pool as they were: true (the caller checks what else must hold).
template <class Attach>
bool attach_fails_cleanly(const Agent& a, NodeNetwork& net, int step, int steps, Attach attach) {
    const std::string before = a.state();
    const std::size_t free_before = net.pool().free_count();
    net.fail_at_step_for_testing(step);
    auto att = attach(with_ports("8080:80"));
    INFO("step " << step);
    if (step == steps) {
        REQUIRE(att);
        return false;
    }
    REQUIRE_FALSE(att);
    CHECK(contains(att.error().message, "injected failure"));
    CHECK(a.state() == before);
    CHECK(net.pool().free_count() == free_before);
    return true;
}

// A machine on the node's LAN: namespace <agent prefix>lan, joined to the simulated host by a
// veth pair (<prefix>l there, eth0 inside) with the two addresses ("192.168.77.1/24",
// "fd77::1/64 nodad"). Removed with the agent's namespaces.
inline std::string add_lan(const Agent& a, const std::string& host_address,
                           const std::string& lan_address) {
    const std::string lan = a.prefix + "lan", link = a.prefix + "l", host = a.host.name();
    REQUIRE(sh("ip netns add " + lan) == 0);
    REQUIRE(sh("ip -n " + host + " link add " + link + " type veth peer name eth0 netns " + lan) ==
            0);
    REQUIRE(sh("ip -n " + host + " addr add " + host_address + " dev " + link) == 0);
    REQUIRE(sh("ip -n " + host + " link set " + link + " up") == 0);
    REQUIRE(sh("ip -n " + lan + " addr add " + lan_address + " dev eth0 && ip -n " + lan +
               " link set eth0 up && ip -n " + lan + " link set lo up") == 0);
    return lan;
}

// python3 -m http.server in namespace `ns` on `port` (bound to `bind`), serving /id with `id`;
// stopped, and its folder removed, at the end of the scope.
struct HttpServer {
    HttpServer(const std::string& ns, int port, const std::string& bind, const std::string& id) {
        char dir_template[] = "/tmp/nm-http-XXXXXX";
        REQUIRE(::mkdtemp(dir_template));
        dir = dir_template;
        REQUIRE(sh("echo " + id + " > " + dir + "/id") == 0);
        pid = sh_out("nsenter --net=/run/netns/" + ns + " python3 -m http.server " +
                     std::to_string(port) + " --bind " + bind + " --directory " + dir +
                     " >/dev/null 2>&1 & echo $!");
        pid = pid.substr(0, pid.find('\n'));
    }
    ~HttpServer() { sh("kill " + pid + "; rm -rf " + dir); }
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;
    std::string pid, dir;
};

// Runs `command` (a curl) until it prints `want`, for up to 5 s; its last output.
inline std::string output_within(const std::string& command, const std::string& want) {
    std::string answer;
    for (int i = 0; i < 50 && answer != want; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        answer = sh_out(command);
    }
    return answer;
}

// A process in a network namespace of its own (`unshare --net sleep 60`), as a container runtime
// leaves one; killed and reaped at the end of the test.
struct NetnsProcess {
    pid_t pid = -1;
    std::string ns_path;  // /proc/PID/ns/net

    NetnsProcess() {
        pid = ::fork();
        if (pid == 0) {
            ::execlp("unshare", "unshare", "--net", "sleep", "60", static_cast<char*>(nullptr));
            ::_exit(127);
        }
        REQUIRE(pid > 0);
        ns_path = "/proc/" + std::to_string(pid) + "/ns/net";
        // Wait until unshare has moved it into its own namespace.
        const std::string mine = sh_out("readlink /proc/self/ns/net");
        for (int i = 0; i < 200 && sh_out("readlink " + ns_path) == mine; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        REQUIRE(sh_out("readlink " + ns_path) != mine);
    }
    ~NetnsProcess() {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
    NetnsProcess(const NetnsProcess&) = delete;
    NetnsProcess& operator=(const NetnsProcess&) = delete;
};

}  // namespace nm::test
