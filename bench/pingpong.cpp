// 1-byte TCP ping-pong: the request/response latency of a path (netperf TCP_RR is not in Debian
// main).
//
//   pingpong server [--bind ADDR] [--port P]     (default ::, which takes IPv4 as well)
//   pingpong client HOST [--port P] [--seconds S] [--warmup N] [--awake] [--json]
//
// The client sends one byte, waits for the echo, and repeats for S seconds on one connection with
// TCP_NODELAY; it prints the round-trip percentiles in microseconds. The first N round trips
// (default 200) warm up caches, ARP and the tunnel's flow state and are not counted.
//
// --awake keeps every CPU out of its idle state during the test with one SCHED_IDLE spinner per
// CPU (any other runnable thread preempts it at once). In a VM, waking an idle vCPU costs tens of
// microseconds, more than a veth round trip, and how often it happens depends on whatever else
// runs; without --awake the percentiles measure that as much as the path.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

struct Options {
    bool server = false;
    std::string host;
    std::string bind = "::";  // IPv4 and IPv6
    std::uint16_t port = 7001;
    double seconds = 5.0;
    long warmup = 200;
    bool json = false;
    bool awake = false;
};

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "pingpong: %s\n", what.c_str());
    std::exit(1);
}

[[noreturn]] void die_errno(const std::string& what) {
    die(what + ": " + std::strerror(errno));
}

[[noreturn]] void usage() {
    std::fputs(
        "usage: pingpong server [--bind ADDR] [--port P]\n"
        "       pingpong client HOST [--port P] [--seconds S] [--warmup N] [--awake] [--json]\n",
        stderr);
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    if (argc < 2) usage();
    std::string_view mode = argv[1];
    int i = 2;
    if (mode == "server") {
        o.server = true;
    } else if (mode == "client") {
        if (argc < 3) usage();
        o.host = argv[2];
        i = 3;
    } else {
        usage();
    }
    for (; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--json") {
            o.json = true;
            continue;
        }
        if (a == "--awake") {
            o.awake = true;
            continue;
        }
        if (i + 1 >= argc) usage();
        const char* v = argv[++i];
        char* end = nullptr;
        if (a == "--bind") {
            o.bind = v;
        } else if (a == "--port") {
            long p = std::strtol(v, &end, 10);
            if (*end != '\0' || p < 1 || p > 65535) die(std::string("bad --port ") + v);
            o.port = static_cast<std::uint16_t>(p);
        } else if (a == "--seconds") {
            o.seconds = std::strtod(v, &end);
            if (*end != '\0' || o.seconds <= 0) die(std::string("bad --seconds ") + v);
        } else if (a == "--warmup") {
            o.warmup = std::strtol(v, &end, 10);
            if (*end != '\0' || o.warmup < 0) die(std::string("bad --warmup ") + v);
        } else {
            usage();
        }
    }
    return o;
}

// An IPv4 or IPv6 socket address.
struct Address {
    sockaddr_storage storage{};
    socklen_t length = 0;
    int family() const { return storage.ss_family; }
    sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
};

Address address(const std::string& ip, std::uint16_t port) {
    Address a;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        a.length = sizeof *v4;
    } else if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        a.length = sizeof *v6;
    } else {
        die("not an IP address: " + ip);
    }
    return a;
}

void set_nodelay(int fd) {
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) die_errno("TCP_NODELAY");
}

// Echoes single bytes until the peer closes.
void echo(int fd) {
    char b = 0;
    for (;;) {
        ssize_t n = recv(fd, &b, 1, 0);
        if (n <= 0) break;
        if (send(fd, &b, 1, 0) != 1) break;
    }
    close(fd);
}

int run_server(const Options& o) {
    Address sa = address(o.bind, o.port);
    int fd = socket(sa.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die_errno("socket");
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // "::" takes IPv4 clients as well.
    if (sa.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, sa.get(), sa.length) != 0)
        die_errno("bind " + o.bind + ":" + std::to_string(o.port));
    if (listen(fd, 16) != 0) die_errno("listen");
    for (;;) {
        int c = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            die_errno("accept");
        }
        set_nodelay(c);
        std::thread(echo, c).detach();
    }
}

// One lowest-priority spinner per CPU the process may run on; they stop when the object dies.
class IdleSpinners {
  public:
    IdleSpinners() {
        cpu_set_t allowed;
        if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) die_errno("sched_getaffinity");
        for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
            if (!CPU_ISSET(cpu, &allowed)) continue;
            threads_.emplace_back([this, cpu] { spin(cpu); });
        }
    }
    IdleSpinners(const IdleSpinners&) = delete;
    IdleSpinners& operator=(const IdleSpinners&) = delete;
    ~IdleSpinners() {
        stop_.store(true, std::memory_order_relaxed);
        for (auto& t : threads_) t.join();
    }

  private:
    void spin(int cpu) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        pthread_setaffinity_np(pthread_self(), sizeof one, &one);
        sched_param p{};
        if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &p) != 0)
            return;  // never spin at normal priority
        while (!stop_.load(std::memory_order_relaxed)) {
        }
    }

    std::atomic<bool> stop_{false};
    std::vector<std::thread> threads_;
};

double percentile(std::vector<double>& v, double p) {
    auto k = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k];
}

int run_client(const Options& o) {
    Address sa = address(o.host, o.port);
    int fd = socket(sa.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die_errno("socket");
    set_nodelay(fd);
    if (connect(fd, sa.get(), sa.length) != 0)
        die_errno("connect " + o.host + ":" + std::to_string(o.port));

    std::optional<IdleSpinners> spinners;
    if (o.awake) spinners.emplace();

    using clock = std::chrono::steady_clock;
    std::vector<double> rtt_us;
    rtt_us.reserve(1 << 18);
    const auto deadline = clock::now() + std::chrono::duration<double>(o.seconds);
    char b = 'x';
    for (long i = 0;; ++i) {
        auto t0 = clock::now();
        if (t0 >= deadline) break;
        if (send(fd, &b, 1, 0) != 1) die_errno("send");
        ssize_t n = recv(fd, &b, 1, 0);
        if (n == 0) die("server closed the connection");
        if (n < 0) die_errno("recv");
        auto t1 = clock::now();
        if (i >= o.warmup)
            rtt_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
    close(fd);
    spinners.reset();
    if (rtt_us.empty()) die("no round trips completed after the warm-up; raise --seconds");

    const double n = static_cast<double>(rtt_us.size());
    double sum = 0;
    for (double x : rtt_us) sum += x;
    const auto [lo, hi] = std::minmax_element(rtt_us.begin(), rtt_us.end());
    const double mn = *lo, mx = *hi;
    const double p50 = percentile(rtt_us, 50), p99 = percentile(rtt_us, 99);
    if (o.json) {
        std::printf(
            "{\"count\": %zu, \"p50_us\": %.1f, \"p99_us\": %.1f, \"mean_us\": %.1f, \"min_us\": "
            "%.1f, "
            "\"max_us\": %.1f}\n",
            rtt_us.size(), p50, p99, sum / n, mn, mx);
    } else {
        std::printf(
            "round trips %zu  p50 %.1f us  p99 %.1f us  mean %.1f us  min %.1f us  max %.1f us\n",
            rtt_us.size(), p50, p99, sum / n, mn, mx);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    Options o = parse(argc, argv);
    return o.server ? run_server(o) : run_client(o);
}
