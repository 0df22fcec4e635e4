// libFuzzer target over the packet core: parse, rewrite and both decisions, on a fixed table.
// Besides sanitizer reports it checks four properties: a rewrite keeps a valid IPv4 header
// checksum valid, an IPv6 rewrite keeps a valid upper-layer checksum valid, nothing the view
// reports lies outside the buffer, and the ICMP error answering a packet too big for the tunnel
// (core/too_big.hpp) parses, verifies and quotes the packet. The table is dual-stack, so IPv6
// packets are translated too.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/checksum.hpp"
#include "core/packet.hpp"
#include "core/too_big.hpp"
#include "tunnel/decision.hpp"
#include "tunnel/flow_owner.hpp"

using namespace nm;

namespace {

Ipv4 ip(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    return Ipv4{uint32_t{a} << 24 | uint32_t{b} << 16 | uint32_t{c} << 8 | d};
}
// fc00::/fdff:: style addresses: two leading bytes, then four low ones.
Ipv6 ip6(uint8_t top, uint8_t second, const uint8_t* low4) {
    Ipv6 a;
    a.bytes[0] = top;
    a.bytes[1] = second;
    std::memcpy(a.bytes.data() + 12, low4, 4);
    return a;
}
Ipv6 ip6(uint8_t top, uint8_t second, uint8_t c, uint8_t d) {
    const uint8_t low[4] = {0, 0, c, d};
    return ip6(top, second, low);
}

// Whether a parsed IPv6 packet's upper-layer checksum equals a full recomputation.
bool l4_checksum_ok(PacketView& v) {
    if (!v.is_ipv6() || !v.l4_checksum_offset() || v.fragment() != Fragment::none) return false;
    std::vector<uint8_t> copy(v.bytes().begin(), v.bytes().end());
    auto c = PacketView::parse(copy);
    if (!c) std::abort();  // the same bytes parsed once already
    fill_checksums(*c);
    return std::equal(copy.begin(), copy.end(), v.bytes().begin());
}

TableEntry entry(const char* app, int instance, Ipv4 nsip, Ipv4 node, std::vector<ServiceIp> sips,
                 Ipv6 nsipv6 = {}) {
    TableEntry e;
    e.appname = app;
    e.appns = e.servicename = e.servicenamespace = "x";
    e.instancenumber = instance;
    e.nsip = nsip;
    e.nodeip = node;
    e.nodeport = 50103;
    e.serviceip = std::move(sips);
    e.nsipv6 = nsipv6;
    return e;
}

struct World {
    TranslationTable table;
    ConversionCache cache{CacheLimits{.max_flows = 64}, ConversionCache::Clock::time_point{}};
    Balancer balancer;
    RttEstimates rtt;
    NodeIdentity node;
    PathCounters counters;
    ServiceUse uses;
    PathContext path{table, cache, balancer, node, rtt, counters, uses};
    uint64_t tick = 0;

    World() {
        node.node_ip = ip(10, 0, 0, 1);
        node.local_subnet = Cidr{ip(172, 19, 1, 0), 24};
        node.networks.service_network = Cidr{ip(172, 30, 0, 0), 16};
        node.networks.container_network = Cidr{ip(172, 16, 0, 0), 12};
        node.local_subnet_v6 = Cidr6{ip6(0xfc, 0, 1, 0), 120};
        const Ipv4 a{ip(10, 0, 0, 1)}, b{ip(10, 0, 0, 2)};
        table.upsert(entry("c", 0, ip(172, 19, 1, 2), a,
                           {{IpType::InstanceNumber, ip(172, 30, 1, 0), ip6(0xfd, 0xff, 1, 0)}},
                           ip6(0xfc, 0, 1, 2)));
        for (uint8_t i = 0; i < 4; ++i)
            table.upsert(entry("w", i, ip(172, 19, uint8_t(1 + i % 2), uint8_t(10 + i)),
                               i % 2 ? a : b,
                               {{IpType::RR, ip(172, 30, 0, 10), ip6(0xfd, 0xff, 0x20, 10)},
                                {IpType::Closest, ip(172, 30, 0, 11), ip6(0xfd, 0xff, 0x20, 11)},
                                {IpType::InstanceNumber, ip(172, 30, 2, i), ip6(0xfd, 0xff, 2, i)}},
                               ip6(0xfc, 0, uint8_t(1 + i % 2), uint8_t(10 + i))));
        rtt.set(b, std::chrono::microseconds(300));
    }
};

// The packet too big / fragmentation needed about `original` (parsed as `v`): a packet that
// parses, with valid checksums, from its destination to its source, quoting it.
void check_too_big(const PacketView& v) {
    if (!may_answer(v)) return;
    std::vector<uint8_t> error(kTooBigMax);
    const size_t n = build_too_big(v.bytes(), 1280, error);
    if (n == 0) return;  // an IPv4 header and 8 bytes more are needed
    error.resize(n);
    auto e = PacketView::parse(error);
    if (!e || n > 1280) std::abort();
    const size_t header = v.is_ipv6() ? 48 : 28;
    if (!std::equal(error.begin() + static_cast<long>(header), error.end(), v.bytes().begin()))
        std::abort();
    if (v.is_ipv6()) {
        if (e->source_v6() != v.destination_v6() || !l4_checksum_ok(*e)) std::abort();
    } else if (e->source() != v.destination() || !ipv4_header_checksum_ok(*e) ||
               csum::fold(csum::add(std::span(error).subspan(20))) != 0xffff) {
        std::abort();
    }
}

void check_view(const PacketView& v, size_t size) {
    if (v.bytes().size() > size || v.l4_offset() > v.bytes().size() ||
        v.l4_checksum_offset() + 2 > v.bytes().size() + (v.l4_checksum_offset() ? 0 : 2))
        std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static World world;
    if (size < 9) return 0;
    const uint8_t mode = data[0];
    Ipv4 new_src{csum::load_be32(data + 1)}, new_dst{csum::load_be32(data + 5)};
    // An exact-size heap copy: any read past the packet is an ASan report.
    std::vector<uint8_t> bytes(data + 9, data + size);
    const L4Csum csum_mode = mode & 1 ? L4Csum::partial : L4Csum::full;

    if (auto v = PacketView::parse(bytes)) {
        check_view(*v, bytes.size());
        check_too_big(*v);
        const bool header_ok = v->is_ipv4() && ipv4_header_checksum_ok(*v);
        const bool l4_ok = csum_mode == L4Csum::full && l4_checksum_ok(*v);
        const Ipv6 src6 = ip6(0xfd, 0xff, data + 1), dst6 = ip6(0xfc, 0, data + 5);
        if ((mode & 6) == 6) {
            v->rewrite_addresses(new_src, new_dst, csum_mode);
            v->rewrite_addresses(src6, dst6, csum_mode);
        } else {
            if (mode & 2) v->rewrite_source(new_src, csum_mode);
            if (mode & 4) v->rewrite_destination(new_dst, csum_mode);
            if (mode & 2) v->rewrite_source(src6, csum_mode);
            if (mode & 4) v->rewrite_destination(dst6, csum_mode);
        }
        if (header_ok && !ipv4_header_checksum_ok(*v)) std::abort();
        if (l4_ok && !l4_checksum_ok(*v)) std::abort();
        (void)owner_shard(*v, 3);
    }

    world.tick += mode >> 4;
    world.cache.set_now(ConversionCache::Clock::time_point{} + std::chrono::seconds(world.tick));
    std::vector<uint8_t> out(data + 9, data + size);
    Decision d = decide_outgoing(std::span<uint8_t>(out), world.path, csum_mode, mode & 8);
    if (std::holds_alternative<DeliverLocal>(d))
        decide_incoming(std::span<uint8_t>(out), world.path);
    std::vector<uint8_t> in(data + 9, data + size);
    decide_incoming(std::span<uint8_t>(in), world.path, csum_mode);
    world.cache.expire(8);
    return 0;
}
