// Microbenchmarks of the packet core: rewrite + checksum, the outgoing decision of a cached flow,
// table lookups at 100k entries, the flow cache at 1M flows, and memory per entry and per flow.
//   packet_path [--json FILE] [Google Benchmark flags, e.g. --benchmark_min_time=0.2]
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/checksum.hpp"
#include "core/packet.hpp"
#include "tunnel/decision.hpp"

using namespace nm;

namespace {

constexpr size_t table_entries = 100'000;
constexpr size_t cache_flows = 1'000'000;

Ipv4 ipv4(uint32_t v) {
    return Ipv4{v};
}

// A 64-byte TCP/IPv4 packet with valid checksums.
std::vector<uint8_t> tcp_packet(Ipv4 src, uint16_t sport, Ipv4 dst, uint16_t dport) {
    std::vector<uint8_t> b(64, 0);
    b[0] = 0x45;
    csum::store_be16(&b[2], 64);
    b[8] = 64;
    b[9] = ipproto::tcp;
    csum::store_be32(&b[12], src.value);
    csum::store_be32(&b[16], dst.value);
    csum::store_be16(&b[20], sport);
    csum::store_be16(&b[22], dport);
    b[32] = 5 << 4;
    b[33] = 0x10;
    auto v = PacketView::parse(b);
    fill_checksums(*v);
    return b;
}

// A 64-byte TCP/IPv6 packet (no payload) with a valid checksum.
std::vector<uint8_t> tcp6_packet(const Ipv6& src, uint16_t sport, const Ipv6& dst, uint16_t dport) {
    std::vector<uint8_t> b(64, 0);
    b[0] = 0x60;
    csum::store_be16(&b[4], 24);
    b[6] = ipproto::tcp;
    b[7] = 64;
    std::memcpy(&b[8], src.bytes.data(), 16);
    std::memcpy(&b[24], dst.bytes.data(), 16);
    csum::store_be16(&b[40], sport);
    csum::store_be16(&b[42], dport);
    b[52] = 6 << 4;  // a 24-byte header: one MSS-sized option slot, as a data segment might
    b[53] = 0x10;
    auto v = PacketView::parse(b);
    fill_checksums(*v);
    return b;
}

// An IPv6 address of the given /96 prefix with `low` in its last 32 bits.
Ipv6 ipv6(uint16_t top, uint16_t second, uint32_t low) {
    Ipv6 a;
    csum::store_be16(&a.bytes[0], top);
    csum::store_be16(&a.bytes[2], second);
    csum::store_be32(&a.bytes[12], low);
    return a;
}

// Entry i: job "appNNNNN.ns.service.default" (4 instances per job), nsip 172.16.0.0 + i + 1,
// one RR ServiceIP per job and one InstanceNumber ServiceIP per instance; dual stack unless not.
TableEntry make_entry(size_t i, bool dual_stack = true) {
    TableEntry e;
    e.appname = "app" + std::to_string(i / 4);
    e.appns = "ns";
    e.servicename = "service";
    e.servicenamespace = "default";
    e.instancenumber = static_cast<int>(i % 4);
    e.nodeip = ipv4(0x0a000000 + static_cast<uint32_t>(i % 50) + 1);
    e.nodeport = 50103;
    e.nsip = ipv4(0xac100000 + static_cast<uint32_t>(i) + 1);
    e.serviceip = {{IpType::RR, ipv4(0xac1e0000 + static_cast<uint32_t>(i / 4))},
                   {IpType::InstanceNumber, ipv4(0xad000000 + static_cast<uint32_t>(i))}};
    if (!dual_stack) return e;
    // Dual stack: nsipv6 fc00::(i+1), RR fdff:2000::(i/4), instance fdff::1:(i).
    e.nsipv6 = ipv6(0xfc00, 0, static_cast<uint32_t>(i) + 1);
    e.serviceip[0].address_v6 = ipv6(0xfdff, 0x2000, static_cast<uint32_t>(i / 4));
    e.serviceip[1].address_v6 = ipv6(0xfdff, 0, 0x10000 + static_cast<uint32_t>(i));
    return e;
}

// Heap bytes in use, counting large blocks the allocator took with mmap.
size_t heap_in_use() {
    const auto m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

struct TableFixture {
    TranslationTable table;
    std::vector<Ipv4> service_keys, nsip_keys;
    size_t bytes_per_entry = 0;
    TableFixture() {
        const size_t before = heap_in_use();
        for (size_t i = 0; i < table_entries; ++i) table.upsert(make_entry(i));
        bytes_per_entry = (heap_in_use() - before + sizeof(table)) / table_entries;
        std::mt19937 rng(1);
        for (int i = 0; i < 1 << 16; ++i) {
            const size_t k = rng() % table_entries;
            service_keys.push_back(i % 2 ? ipv4(0xac1e0000 + static_cast<uint32_t>(k / 4))
                                         : ipv4(0xad000000 + static_cast<uint32_t>(k)));
            nsip_keys.push_back(ipv4(0xac100000 + static_cast<uint32_t>(k) + 1));
        }
    }
};
TableFixture& tables() {
    static TableFixture f;
    return f;
}

// Heap bytes per entry of a table of IPv4-only entries (the fixture's are dual stack).
size_t ipv4_only_bytes_per_entry() {
    const size_t before = heap_in_use();
    TranslationTable table;
    for (size_t i = 0; i < table_entries; ++i) table.upsert(make_entry(i, false));
    return (heap_in_use() - before + sizeof(table)) / table_entries;
}

FlowKey flow_key(uint32_t i) {
    return FlowKey{ipv4(0xac130000 + (i >> 16)), ipv4(0xac1e0000 + (i & 0xff)),
                   static_cast<uint16_t>(i), 443, ipproto::tcp};
}

struct CacheFixture {
    std::unique_ptr<ConversionCache> cache;
    size_t bytes_per_flow = 0;
    CacheFixture() {
        const size_t before = heap_in_use();
        cache = std::make_unique<ConversionCache>(CacheLimits{.max_flows = cache_flows});
        cache->set_now(ConversionCache::Clock::now());
        const Conversion c{
            ipv4(0xac130202), ipv4(0xac1e0100), ipv4(0xac1e0200), ipv4(0x0a000002), 50103, false};
        for (uint32_t i = 0; i < cache_flows; ++i) cache->insert(flow_key(i), c, 0);
        bytes_per_flow = (heap_in_use() - before) / cache_flows;
    }
};
CacheFixture& caches() {
    static CacheFixture f;
    return f;
}

void BM_rewrite_checksum(benchmark::State& state) {
    auto b = tcp_packet(ipv4(0xac130102), 40000, ipv4(0xac1e000a), 80);
    auto v = *PacketView::parse(b);
    const Ipv4 addresses[2][2] = {{ipv4(0xac1e0100), ipv4(0xac130202)},
                                  {ipv4(0xac130102), ipv4(0xac1e000a)}};
    size_t i = 0;
    for (auto _ : state) {
        v.rewrite_addresses(addresses[i & 1][0], addresses[i & 1][1]);
        benchmark::DoNotOptimize(b.data());
        ++i;
    }
}
BENCHMARK(BM_rewrite_checksum);

// The whole outgoing path of a packet whose flow is cached: parse, cache lookup, rewrite. The
// same 1024 flows over IPv4 (range 0) or IPv6 (range 1).
void BM_outgoing_cached(benchmark::State& state) {
    const bool v6 = state.range(0) == 1;
    TranslationTable table;
    for (size_t i = 0; i < 1000; ++i) table.upsert(make_entry(i));
    TableEntry sender = make_entry(5000);
    sender.nsip = ipv4(0xac130102);
    sender.nsipv6 = ipv6(0xfc00, 0, 0x102);
    table.upsert(sender);
    ConversionCache cache;
    cache.set_now(ConversionCache::Clock::now());
    Balancer balancer;
    RttEstimates rtt;
    NodeIdentity node;
    node.node_ip = ipv4(0x0a0000fe);
    node.local_subnet = Cidr{ipv4(0xac130100), 24};
    node.networks.service_network = Cidr{ipv4(0xac1e0000), 16};    // 172.30.0.0/16
    node.networks.container_network = Cidr{ipv4(0xac100000), 12};  // 172.16.0.0/12
    node.local_subnet_v6 = Cidr6{ipv6(0xfc00, 0, 0x100), 120};
    PathCounters counters;
    ServiceUse uses;
    PathContext path{table, cache, balancer, node, rtt, counters, uses};
    // 1024 flows from the sender to 250 RR ServiceIPs, each packet kept as a template.
    std::vector<std::vector<uint8_t>> templates;
    for (uint16_t f = 0; f < 1024; ++f) {
        const auto port = static_cast<uint16_t>(20000 + f);
        templates.push_back(
            v6 ? tcp6_packet(sender.nsipv6, port, ipv6(0xfdff, 0x2000, f % 250u), 80)
               : tcp_packet(sender.nsip, port, ipv4(0xac1e0000 + f % 250), 80));
    }
    for (auto t : templates)
        if (!std::holds_alternative<SendTo>(decide_outgoing(std::span<uint8_t>(t), path)))
            state.SkipWithError("setup: flow not created");
    uint8_t buffer[64];
    size_t i = 0;
    for (auto _ : state) {
        std::memcpy(buffer, templates[i++ & 1023].data(), 64);  // the packet as read
        auto d = decide_outgoing(std::span<uint8_t>(buffer, 64), path);
        benchmark::DoNotOptimize(d);
    }
    if (counters.outgoing_cached < static_cast<uint64_t>(state.iterations()))
        state.SkipWithError("not all cached");
}
BENCHMARK(BM_outgoing_cached)->Arg(0)->Arg(1);

void BM_table_lookup_service_ip(benchmark::State& state) {
    auto& f = tables();
    size_t i = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(f.table.find_service(f.service_keys[i++ & 0xffff]));
    }
}
BENCHMARK(BM_table_lookup_service_ip);

void BM_table_lookup_nsip(benchmark::State& state) {
    auto& f = tables();
    size_t i = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(f.table.find_nsip(f.nsip_keys[i++ & 0xffff]));
    }
}
BENCHMARK(BM_table_lookup_nsip);

void BM_flow_lookup(benchmark::State& state) {
    auto& f = caches();
    std::mt19937 rng(2);
    std::vector<FlowKey> keys;
    for (int i = 0; i < 1 << 16; ++i) keys.push_back(flow_key(rng() % cache_flows));
    size_t i = 0;
    for (auto _ : state) benchmark::DoNotOptimize(f.cache->find(keys[i++ & 0xffff]));
}
BENCHMARK(BM_flow_lookup);

// Inserting new flows into a full cache of 1M: each insert evicts one.
void BM_flow_insert(benchmark::State& state) {
    auto& f = caches();
    const Conversion c{
        ipv4(0xac130202), ipv4(0xac1e0100), ipv4(0xac1e0200), ipv4(0x0a000002), 50103, false};
    static uint32_t next = cache_flows;
    for (auto _ : state) benchmark::DoNotOptimize(&f.cache->insert(flow_key(next++), c, 0));
}
BENCHMARK(BM_flow_insert);

// The expiry round each TUN batch runs (expire(256)) over a shard's cache of a few live flows,
// as during a single TCP stream: the receiving agent reads the stream's ACKs in batches of one
// or two packets, so this runs nearly once per ACK.
void BM_expire_round_few_flows(benchmark::State& state) {
    ConversionCache cache;
    cache.set_now(ConversionCache::Clock::now());
    const Conversion c{
        ipv4(0xac130202), ipv4(0xac1e0100), ipv4(0xac1e0200), ipv4(0x0a000002), 50103, false};
    for (uint32_t i = 0; i < 4; ++i) cache.insert(flow_key(i), c, 0);
    for (auto _ : state) benchmark::DoNotOptimize(cache.expire(256));
    if (cache.size() != 4) state.SkipWithError("a live flow expired");
}
BENCHMARK(BM_expire_round_few_flows);

// Collects ns per iteration by benchmark name while printing as usual.
class Collector : public benchmark::ConsoleReporter {
  public:
    std::map<std::string, double> ns;
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const auto& run : runs)
            if (!run.error_occurred)
                // CPU time of the benchmark thread: other work on this shared 2-core machine
                // inflates wall time but not this.
                ns[run.benchmark_name()] = run.GetAdjustedCPUTime() *
                                           (run.time_unit == benchmark::kNanosecond ? 1.0 : 1e3);
        ConsoleReporter::ReportRuns(runs);
    }
};

}  // namespace

int main(int argc, char** argv) {
    std::string json_path;
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
            json_path = argv[++i];
            continue;
        }
        args.push_back(argv[i]);
    }
    int n = static_cast<int>(args.size());
    benchmark::Initialize(&n, args.data());
    if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 2;

    // Memory first, on a quiet heap.
    const size_t entry_v4_bytes = ipv4_only_bytes_per_entry();
    const size_t entry_bytes = tables().bytes_per_entry;
    const size_t flow_bytes = caches().bytes_per_flow;

    Collector collector;
    benchmark::RunSpecifiedBenchmarks(&collector);
    auto get = [&](const char* name) {
        auto it = collector.ns.find(name);
        return it == collector.ns.end() ? -1.0 : it->second;
    };
    const double rewrite = get("BM_rewrite_checksum");
    const double outgoing = get("BM_outgoing_cached/0");
    const double outgoing_v6 = get("BM_outgoing_cached/1");
    const double by_sip = get("BM_table_lookup_service_ip");
    const double by_nsip = get("BM_table_lookup_nsip");
    const double table_lookup = std::max(by_sip, by_nsip);
    const double flow_lookup = get("BM_flow_lookup");
    const double flow_insert = get("BM_flow_insert");

    std::printf("\n%-44s %10s %10s\n", "packet core", "measured", "target");
    std::printf("%-44s %8.1f ns %10s\n", "rewrite src+dst, incremental checksums", rewrite, "");
    std::printf("%-44s %8.1f ns %10s\n", "outgoing decision, cached flow (+parse)", outgoing,
                "< 50 ns");
    std::printf("%-44s %8.1f ns %10s\n", "the same for IPv6", outgoing_v6, "< 1.2x IPv4");
    std::printf("%-44s %8.2f x  %10s\n", "IPv6 / IPv4 cached decision", outgoing_v6 / outgoing,
                "<= 1.2");
    std::printf("%-44s %8.1f ns %10s\n", "table lookup by ServiceIP (100k entries)", by_sip,
                "< 40 ns");
    std::printf("%-44s %8.1f ns %10s\n", "table lookup by nsip (100k entries)", by_nsip, "< 40 ns");
    std::printf("%-44s %8.1f ns %10s\n", "flow cache lookup (1M flows)", flow_lookup, "");
    std::printf("%-44s %8.1f ns %10s\n", "flow cache insert with eviction (1M flows)", flow_insert,
                "");
    std::printf("%-44s %8zu B  %10s\n", "memory per table entry", entry_bytes, "<= 512 B");
    std::printf("%-44s %8zu B  %10s\n", "the same, IPv4-only entries", entry_v4_bytes, "");
    std::printf("%-44s %8zu B  %10s\n", "memory per flow", flow_bytes, "<= 200 B");

    if (!json_path.empty()) {
        std::ofstream out(json_path);
        out << "{\n"
            << "  \"rewrite_ns\": " << rewrite << ",\n"
            << "  \"outgoing_cached_ns\": " << outgoing << ",\n"
            << "  \"outgoing_cached_v6_ns\": " << outgoing_v6 << ",\n"
            << "  \"table_lookup_ns\": " << table_lookup << ",\n"
            << "  \"table_lookup_service_ip_ns\": " << by_sip << ",\n"
            << "  \"table_lookup_nsip_ns\": " << by_nsip << ",\n"
            << "  \"flow_lookup_ns\": " << flow_lookup << ",\n"
            << "  \"flow_insert_ns\": " << flow_insert << ",\n"
            << "  \"flow_bytes\": " << flow_bytes << ",\n"
            << "  \"entry_bytes\": " << entry_bytes << ",\n"
            << "  \"entry_bytes_ipv4_only\": " << entry_v4_bytes << "\n}\n";
        if (!out) {
            std::fprintf(stderr, "packet_path: cannot write %s\n", json_path.c_str());
            return 1;
        }
    }
    return 0;
}
