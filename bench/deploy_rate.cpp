// deploy_rate: namespaces attached and detached per second by NodeNetwork (netlink in-process)
// next to the same steps as a script of `ip` commands (how the reference agent works), in one
// run, inside a simulated host of its own that it removes afterwards. Run as root.
//   deploy_rate [--count N] [--json FILE]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/log.hpp"
#include "env/netns.hpp"
#include "env/node_network.hpp"
#include "env/route_socket.hpp"

using namespace nm;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
    int count = 200;
    std::string json;
};

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// The simulated host: a namespace of its own, removed (with every app namespace carrying one
// of our prefixes) however the benchmark ends.
struct SimHost {
    std::string name;
    std::vector<std::string> prefixes;
    explicit SimHost(std::string n) : name(std::move(n)) {}
    bool create() { return std::system(("ip netns add " + name).c_str()) == 0; }
    ~SimHost() {
        for (const std::string& ns : list_named_netns())
            for (const std::string& p : prefixes)
                if (ns.starts_with(p)) (void)delete_named_netns(ns);
        (void)std::system(("ip netns del " + name + " 2>/dev/null").c_str());
    }
};

// Runs fn on a thread inside the host's namespace.
void in_host(const std::string& host, const std::function<void()>& fn) {
    auto fd = open_named_netns(host);
    if (!fd || !run_in_netns(fd->get(), fn)) throw std::runtime_error("cannot enter " + host);
}

struct Rates {
    double attach_s = 0, detach_s = 0;
    double reaped_s = 0;  // after the last detach, until the kernel had removed every veth
};

// Host-side veths whose name starts with `head`.
std::size_t count_links(RouteSocket& sock, const std::string& head) {
    auto links = sock.links();
    if (!links) throw std::runtime_error("list links: " + links.error().message);
    std::size_t n = 0;
    for (const LinkInfo& l : *links) n += l.name.starts_with(head);
    return n;
}

Rates run_netmanager(const std::string& host, const std::string& prefix, int count) {
    Rates r;
    in_host(host, [&] {
        NodeNetworkConfig cfg;
        cfg.prefix = prefix;
        cfg.subnet = *Cidr::parse("10.18.0.0/16");
        auto net = NodeNetwork::setup(cfg);
        if (!net) {
            throw std::runtime_error(std::string("setup: ") + net.error().message);
        }
        std::vector<std::string> links;
        auto start = Clock::now();
        for (int i = 0; i < count; ++i) {
            auto att = net->attach_new_namespace("n" + std::to_string(i));
            if (!att) {
                throw std::runtime_error(std::string("attach: ") + att.error().message);
            }
            links.push_back(att->host_link);
        }
        r.attach_s = seconds_since(start);
        start = Clock::now();
        for (const std::string& link : links)
            if (auto d = net->detach(link); !d) {
                throw std::runtime_error(std::string("detach: ") + d.error().message);
            }
        r.detach_s = seconds_since(start);
        // Detach leaves the veth pair to the kernel's batched namespace cleanup: wait for it,
        // so the script below runs on a quiet kernel, and report how long it took.
        start = Clock::now();
        auto sock = RouteSocket::open();
        if (!sock) throw std::runtime_error(sock.error().message);
        while (count_links(*sock, prefix + "v") > 0 && seconds_since(start) < 60)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        r.reaped_s = seconds_since(start);
        net->teardown();
    });
    return r;
}

// The same steps, one `ip` command each, as the reference agent runs them.
std::string ip_attach_script(const std::string& prefix, int count) {
    std::ostringstream s;
    s << "set -e\n";
    for (int i = 0; i < count; ++i) {
        std::string ns = prefix + "n" + std::to_string(i), host = prefix + "v" + std::to_string(i),
                    peer = prefix + "p" + std::to_string(i);
        std::string addr = "172.20." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 2);
        s << "ip netns add " << ns << "\n"
          << "ip link add " << host << " type veth peer name " << peer << "\n"
          << "ip link set " << peer << " netns " << ns << "\n"
          << "ip link set " << host << " master " << prefix << "br\n"
          << "ip link set " << host << " mtu 1450 up\n"
          << "ip -n " << ns << " link set lo up\n"
          << "ip -n " << ns << " link set " << peer << " mtu 1450 up\n"
          << "ip -n " << ns << " addr add " << addr << "/16 dev " << peer << "\n"
          << "ip -n " << ns << " route add 172.16.0.0/12 via 172.20.0.1\n"
          << "ip -n " << ns << " route add 172.30.0.0/16 via 172.20.0.1\n"
          << "ip -n " << ns << " route add default via 172.20.0.1\n";
    }
    return s.str();
}

std::string ip_detach_script(const std::string& prefix, int count) {
    std::ostringstream s;
    s << "set -e\n";
    for (int i = 0; i < count; ++i)
        s << "ip link del " << prefix << "v" << i << "\nip netns del " << prefix << "n" << i
          << "\n";
    return s.str();
}

// Runs a script with /bin/sh inside the host (nsenter changes only the network namespace, so
// the namespaces it mounts are visible to everyone); seconds taken, or < 0 on failure.
double run_script(const std::string& host, const std::string& script) {
    char path[] = "/tmp/deploy_rate_XXXXXX";
    int fd = ::mkstemp(path);
    if (fd < 0) return -1;
    (void)!::write(fd, script.data(), script.size());
    ::close(fd);
    auto start = Clock::now();
    int status = std::system(("nsenter --net=/run/netns/" + host + " /bin/sh " + path).c_str());
    double took = seconds_since(start);
    ::unlink(path);
    return status == 0 ? took : -1;
}

Rates run_ip_script(const std::string& host, const std::string& prefix, int count) {
    std::string setup = "ip link add " + prefix + "br type bridge\nip link set " + prefix +
                        "br mtu 1450 up\nip addr add 172.20.0.1/16 dev " + prefix + "br\n";
    if (run_script(host, setup) < 0) throw std::runtime_error("ip script setup failed");
    Rates r;
    r.attach_s = run_script(host, ip_attach_script(prefix, count));
    if (r.attach_s < 0) throw std::runtime_error("ip attach script failed");
    r.detach_s = run_script(host, ip_detach_script(prefix, count));
    if (r.detach_s < 0) throw std::runtime_error("ip detach script failed");
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--count" && i + 1 < argc)
            o.count = std::atoi(argv[++i]);
        else if (a == "--json" && i + 1 < argc)
            o.json = argv[++i];
        else {
            std::cerr << "usage: deploy_rate [--count N] [--json FILE]\n";
            return 2;
        }
    }
    if (o.count < 1 || o.count > 60000) {
        std::cerr << "deploy_rate: --count must be 1..60000\n";
        return 2;
    }
    if (::geteuid() != 0) {
        std::cerr << "deploy_rate: run as root (it builds network namespaces)\n";
        return 2;
    }
    set_log_level(LogLevel::warn);
    const std::string id = std::to_string(::getpid() % 1000000);
    SimHost host("drh" + id);
    const std::string nm_prefix = "dra" + id, ip_prefix = "drs" + id;
    host.prefixes = {nm_prefix, ip_prefix};
    if (!host.create()) {
        std::cerr << "deploy_rate: cannot create the simulated host\n";
        return 1;
    }
    // Stop on Ctrl-C through the destructors, not halfway.
    signal(SIGINT, SIG_IGN);

    Rates nmr, ipr;
    try {
        nmr = run_netmanager(host.name, nm_prefix, o.count);
        ipr = run_ip_script(host.name, ip_prefix, o.count);
    } catch (const std::exception& e) {
        std::cerr << "deploy_rate: " << e.what() << "\n";
        return 1;
    }

    const double n = o.count;
    // Counted until the kernel had removed the last veth pair too, not only until detach returned.
    double nm_per_s = n / (nmr.attach_s + nmr.detach_s + nmr.reaped_s);
    double ip_per_s = n / (ipr.attach_s + ipr.detach_s);
    double ratio = nm_per_s / ip_per_s;
    std::printf("deploy_rate: %d namespaces attached then detached, in simulated host %s\n",
                o.count, host.name.c_str());
    std::printf("  netmanager (netlink): %8.1f attach+detach/s  (attach %7.1f/s, detach %7.1f/s)\n",
                nm_per_s, n / nmr.attach_s, n / nmr.detach_s);
    std::printf(
        "  (rate counted until the kernel had reaped the last namespace, %.2f s after the last "
        "detach)\n",
        nmr.reaped_s);
    std::printf("  ip command script:    %8.1f attach+detach/s  (attach %7.1f/s, detach %7.1f/s)\n",
                ip_per_s, n / ipr.attach_s, n / ipr.detach_s);
    std::printf("  ratio: %.1fx\n", ratio);
    if (!o.json.empty()) {
        std::ofstream out(o.json);
        out << "{\"count\": " << o.count << ", \"netmanager_per_s\": " << nm_per_s
            << ", \"ip_script_per_s\": " << ip_per_s << ", \"ratio\": " << ratio
            << ", \"netmanager_attach_per_s\": " << n / nmr.attach_s
            << ", \"netmanager_detach_per_s\": " << n / nmr.detach_s
            << ", \"ip_script_attach_per_s\": " << n / ipr.attach_s
            << ", \"ip_script_detach_per_s\": " << n / ipr.detach_s
            << ", \"netmanager_reaped_after_s\": " << nmr.reaped_s << "}\n";
        if (!out) {
            std::cerr << "deploy_rate: cannot write " << o.json << "\n";
            return 1;
        }
    }
    return 0;
}
