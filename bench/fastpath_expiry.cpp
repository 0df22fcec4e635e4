// The kernel fast path's idle expiry at scale: both flow maps filled with N open TCP flows to
// remote instances, idle 10 to 60 s (past the closing grace, far from TCP's hour: every one
// stays), then expiry rounds as shard 0 runs them every second. Reports bpf() system calls per
// round (counted by the kernel's syscalls:sys_enter_bpf tracepoint for this thread), wall time
// and this thread's CPU time per round (the stall shard 0's loop sees; wall time on a busy
// machine is noisier). Root: makes and removes a namespace of its own.
//   fastpath_expiry [FLOWS...]   (default: 10000 50000)
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include "../tests/fastpath/kernel_flows.hpp"

using namespace nm;
using namespace nm::test;

namespace {

// Counts the calling thread's bpf() system calls (-1 without tracefs or perf events).
class BpfCalls {
  public:
    BpfCalls() {
        std::ifstream id_file("/sys/kernel/tracing/events/syscalls/sys_enter_bpf/id");
        long long id = -1;
        if (!(id_file >> id)) return;
        perf_event_attr attr{};
        attr.type = PERF_TYPE_TRACEPOINT;
        attr.size = sizeof attr;
        attr.config = static_cast<uint64_t>(id);
        fd_ = static_cast<int>(::syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
    }
    ~BpfCalls() {
        if (fd_ >= 0) ::close(fd_);
    }
    BpfCalls(const BpfCalls&) = delete;
    BpfCalls& operator=(const BpfCalls&) = delete;
    long long count() const {
        long long n = 0;
        if (fd_ < 0 || ::read(fd_, &n, sizeof n) != sizeof n) return -1;
        return n;
    }

  private:
    int fd_ = -1;
};

double thread_cpu_ms() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

void run(size_t flows, const BpfCalls& calls) {
    FastPathNetns netns("nmfpbench");
    FastPath& fast = netns.fast();
    const Ipv4 reply_source{0x0a1e0102};
    for (size_t i = 0; i < flows; ++i) {
        // Distinct clients and ports; idle 10 to 60 s, a few entries each second of that.
        const FlowKey flow{Ipv4{0x0a140000 + static_cast<uint32_t>(i / 50'000)}, Ipv4{0x0a1e0101},
                           static_cast<uint16_t>(1024 + i % 50'000), 80, ipproto::tcp};
        const auto idle = std::chrono::milliseconds(10'500 + static_cast<long>(i % 49'000));
        write_flow(fast, flow, reply_source, {idle}, EntryUse{idle});
    }
    constexpr int rounds = 7;
    std::vector<double> ms, cpu_ms;
    std::vector<long long> syscalls;
    size_t expired = 0;
    for (int r = 0; r < rounds; ++r) {
        const long long before = calls.count();
        const double cpu_start = thread_cpu_ms();
        const auto start = std::chrono::steady_clock::now();
        expired += fast.expire_idle();
        const auto end = std::chrono::steady_clock::now();
        cpu_ms.push_back(thread_cpu_ms() - cpu_start);
        syscalls.push_back(calls.count() - before);
        ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
    }
    std::sort(ms.begin(), ms.end());
    std::sort(cpu_ms.begin(), cpu_ms.end());
    std::printf(
        "%zu flows (%zu in the egress map): %lld bpf() calls/round, %.2f ms CPU/round "
        "median (min %.2f), %.2f ms wall/round median (min %.2f), %zu expired\n",
        flows, fast.flows(), syscalls.back(), cpu_ms[cpu_ms.size() / 2], cpu_ms.front(),
        ms[ms.size() / 2], ms.front(), expired);
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<size_t> sizes;
    for (int i = 1; i < argc; ++i) sizes.push_back(std::strtoul(argv[i], nullptr, 10));
    if (sizes.empty()) sizes = {10'000, 50'000};
    const BpfCalls calls;
    if (calls.count() < 0) std::fprintf(stderr, "no syscall tracepoint: bpf() calls not counted\n");
    try {
        for (size_t n : sizes) run(n, calls);
    } catch (const std::exception& e) {  // unwound: the namespace goes
        std::fprintf(stderr, "fastpath_expiry: %s\n", e.what());
        return 1;
    }
}
