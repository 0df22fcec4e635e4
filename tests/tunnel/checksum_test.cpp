#include "core/checksum.hpp"

#include <array>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "core/packet.hpp"
#include "test_packet_builder.hpp"

using namespace nm;

namespace {

// An oracle written independently of core/checksum: byte pairs, folded with a loop.
uint32_t naive_sum(const uint8_t* p, size_t n, uint32_t sum = 0) {
    for (size_t i = 0; i < n; i += 2) sum += uint32_t{p[i]} << 8 | (i + 1 < n ? p[i + 1] : 0u);
    return sum;
}
uint16_t naive_fold(uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(sum);
}
// Uniform random numbers in [lo, hi] from a fixed seed, so that a failing round repeats.
struct Uniform {
    std::mt19937_64 rng;
    explicit Uniform(uint64_t seed) : rng(seed) {}
    uint64_t operator()(uint64_t lo, uint64_t hi) {
        return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
    }
};
uint16_t get16(const std::vector<uint8_t>& b, size_t at) {
    return static_cast<uint16_t>(b[at] << 8 | b[at + 1]);
}
void put16(std::vector<uint8_t>& b, size_t at, uint16_t v) {
    b[at] = static_cast<uint8_t>(v >> 8);
    b[at + 1] = static_cast<uint8_t>(v);
}

struct Expected {
    uint16_t header;
    uint16_t l4;  // for partial: the pseudo-header sum
};

// What every checksum of the packet in `b` must be, recomputed from scratch.
Expected recompute(std::vector<uint8_t> b, size_t total, L4Csum mode) {
    const size_t ihl = size_t{b[0] & 0x0fu} * 4;
    put16(b, 10, 0);
    Expected e{static_cast<uint16_t>(~naive_fold(naive_sum(b.data(), ihl))), 0};
    const uint8_t proto = b[9];
    const size_t field = ihl + (proto == ipproto::tcp ? 16 : 6);
    const uint32_t l4_len = static_cast<uint32_t>(total - ihl);
    const uint32_t pseudo = naive_sum(b.data() + 12, 8) + proto + l4_len;
    if (mode == L4Csum::partial) {
        e.l4 = naive_fold(pseudo);
        return e;
    }
    put16(b, field, 0);
    e.l4 = static_cast<uint16_t>(~naive_fold(naive_sum(b.data() + ihl, l4_len, pseudo)));
    if (proto == ipproto::udp && e.l4 == 0) e.l4 = 0xffff;
    return e;
}

// One of the four ways to rewrite addresses: source, destination, both in turn, both at once.
template <class Address>
void rewrite(PacketView& view, const Address& src, const Address& dst, L4Csum mode, uint64_t way) {
    switch (way) {
        case 0:
            view.rewrite_source(src, mode);
            break;
        case 1:
            view.rewrite_destination(dst, mode);
            break;
        case 2:
            view.rewrite_source(src, mode);
            view.rewrite_destination(dst, mode);
            break;
        default:
            view.rewrite_addresses(src, dst, mode);
            break;
    }
}

}  // namespace

TEST_CASE(
    "after any address rewrite every checksum equals a full recomputation (100k random "
    "packets)") {
    Uniform u(20241624);
    const int rounds = 100'000;
    int checked_l4 = 0;
    for (int round = 0; round < rounds; ++round) {
        const uint8_t proto = u(0, 9) < 5 ? ipproto::tcp : u(0, 3) ? ipproto::udp : ipproto::icmp;
        const size_t ihl = 4 * u(5, 15);
        const size_t l4h = proto == ipproto::tcp ? 20 : 8;
        const size_t total = ihl + l4h + u(0, 301);
        std::vector<uint8_t> b(total + u(0, 3));  // sometimes trailing bytes past total length
        for (auto& x : b) x = static_cast<uint8_t>(u(0, 255));
        b[0] = static_cast<uint8_t>(0x40 | ihl / 4);
        put16(b, 2, static_cast<uint16_t>(total));
        put16(b, 6, u(0, 3) ? 0 : 0x4000);  // no fragments (DF sometimes)
        b[9] = proto;
        if (proto == ipproto::tcp)
            b[ihl + 12] = static_cast<uint8_t>(5 << 4 | (b[ihl + 12] & 0x0f));
        if (proto == ipproto::udp) put16(b, ihl + 4, static_cast<uint16_t>(total - ihl));
        const L4Csum mode = u(0, 3) == 0 ? L4Csum::partial : L4Csum::full;
        const bool udp_none = proto == ipproto::udp && mode == L4Csum::full && u(0, 7) == 0;

        // Start from a packet whose checksums are right.
        const size_t field = ihl + (proto == ipproto::tcp ? 16 : 6);
        Expected before = recompute(b, total, mode);
        put16(b, 10, before.header);
        if (proto != ipproto::icmp) put16(b, field, udp_none ? 0 : before.l4);
        std::vector<uint8_t> icmp_before(b.begin() + static_cast<long>(ihl),
                                         b.begin() + static_cast<long>(total));

        auto view = PacketView::parse(b);
        REQUIRE(view);
        const Ipv4 src{static_cast<uint32_t>(u(0, 0xffffffff))};
        const Ipv4 dst{static_cast<uint32_t>(u(0, 0xffffffff))};
        rewrite(*view, src, dst, mode, u(0, 3));

        Expected after = recompute(b, total, mode);
        REQUIRE(get16(b, 10) == after.header);
        if (proto == ipproto::icmp) {
            // No pseudo-header: the ICMP message is untouched.
            REQUIRE(std::equal(icmp_before.begin(), icmp_before.end(), b.begin() + ihl));
        } else if (udp_none) {
            REQUIRE(get16(b, field) == 0);
        } else {
            REQUIRE(get16(b, field) == after.l4);
            ++checked_l4;
        }
    }
    CHECK(checked_l4 > rounds / 2);
}

namespace {
// The IPv6 counterpart of recompute(): the upper-layer checksum at `field` over the pseudo-header
// (both 128-bit addresses, the upper-layer length and next header) and the message from `l4`.
uint16_t recompute6(std::vector<uint8_t> b, size_t l4, size_t field, uint8_t proto, size_t total,
                    L4Csum mode) {
    const uint32_t l4_len = static_cast<uint32_t>(total - l4);
    const uint32_t pseudo = naive_sum(b.data() + 8, 32) + proto + l4_len;
    if (mode == L4Csum::partial) return naive_fold(pseudo);
    put16(b, field, 0);
    uint16_t v = static_cast<uint16_t>(~naive_fold(naive_sum(b.data() + l4, l4_len, pseudo)));
    if (proto == ipproto::udp && v == 0) v = 0xffff;
    return v;
}
}  // namespace

TEST_CASE(
    "after any IPv6 address rewrite the TCP, UDP or ICMPv6 checksum equals a full recomputation, "
    "behind any extension headers (100k random packets)") {
    Uniform u(20260001);
    for (int round = 0; round < 100'000; ++round) {
        const uint64_t kind = u(0, 9);
        const uint8_t proto = kind < 5 ? ipproto::tcp : kind < 8 ? ipproto::udp : ipproto::icmpv6;
        std::vector<uint8_t> b(40);
        for (auto& x : b) x = static_cast<uint8_t>(u(0, 255));
        b[0] = static_cast<uint8_t>(0x60 | (b[0] & 0x0f));
        // 0-3 extension headers (hop-by-hop first, as RFC 8200 orders them), maybe an atomic
        // fragment header.
        std::array<uint8_t, 4> chain{};
        size_t headers = 0;
        if (u(0, 1)) chain[headers++] = ipproto::hop_by_hop;
        if (u(0, 2) == 0) chain[headers++] = ipproto::routing;
        if (u(0, 2) == 0) chain[headers++] = ipproto::destination_options;
        if (u(0, 4) == 0) chain[headers++] = ipproto::fragment;
        b[6] = headers == 0 ? proto : chain[0];
        for (size_t i = 0; i < headers; ++i) {
            const size_t length = chain[i] == ipproto::fragment ? 8 : 8 * (1 + u(0, 3));
            const size_t at = b.size();
            b.resize(at + length);
            for (size_t j = at; j < b.size(); ++j) b[j] = static_cast<uint8_t>(u(0, 255));
            b[at] = i + 1 < headers ? chain[i + 1] : proto;
            if (chain[i] == ipproto::fragment)
                put16(b, at + 2, 0);  // offset 0, no more fragments: a whole datagram
            else
                b[at + 1] = static_cast<uint8_t>(length / 8 - 1);
            if (chain[i] == ipproto::routing) b[at + 3] = 0;  // no segments left
        }
        const size_t l4 = b.size();
        const size_t l4h = proto == ipproto::tcp ? 20 : 8;
        b.resize(l4 + l4h + u(0, 301));
        for (size_t j = l4; j < b.size(); ++j) b[j] = static_cast<uint8_t>(u(0, 255));
        const size_t total = b.size();
        put16(b, 4, static_cast<uint16_t>(total - 40));
        if (proto == ipproto::tcp) b[l4 + 12] = static_cast<uint8_t>(5 << 4 | (b[l4 + 12] & 0x0f));
        if (proto == ipproto::udp) put16(b, l4 + 4, static_cast<uint16_t>(total - l4));
        if (proto == ipproto::icmpv6) b[l4] = static_cast<uint8_t>(u(0, 1) ? 128 : 1);
        b.resize(total + u(0, 3));  // sometimes trailing bytes past the payload length
        const L4Csum mode = u(0, 3) == 0 ? L4Csum::partial : L4Csum::full;
        const size_t field = l4 + (proto == ipproto::tcp ? 16 : proto == ipproto::udp ? 6 : 2);
        put16(b, field, recompute6(b, l4, field, proto, total, mode));

        auto view = PacketView::parse(b);
        REQUIRE(view);
        REQUIRE(view->protocol() == proto);
        REQUIRE(view->l4_offset() == l4);
        REQUIRE(view->l4_checksum_offset() == field);
        Ipv6 src, dst;
        for (auto& x : src.bytes) x = static_cast<uint8_t>(u(0, 255));
        for (auto& x : dst.bytes) x = static_cast<uint8_t>(u(0, 255));
        rewrite(*view, src, dst, mode, u(0, 3));
        REQUIRE(get16(b, field) == recompute6(b, l4, field, proto, total, mode));
    }
}

TEST_CASE("a partial checksum, once completed, equals the full checksum of the rewritten packet") {
    auto proto = GENERATE(ipproto::tcp, ipproto::udp);
    auto bytes = test::build({.protocol = proto, .payload = 333});
    auto p = test::view(bytes);
    fill_checksums(p, L4Csum::partial);
    p.rewrite_source(test::ip("172.30.9.9"), L4Csum::partial);
    p.rewrite_destination(test::ip("172.19.7.7"), L4Csum::partial);
    // What a device does with NEEDS_CSUM: sum from csum_start over the rest, store ~fold.
    auto l4 = p.bytes().subspan(p.l4_offset());
    const uint16_t completed = static_cast<uint16_t>(~csum::fold(csum::add(l4)));
    const size_t field = p.l4_checksum_offset();
    auto copy = bytes;
    auto q = test::view(copy);
    fill_checksums(q, L4Csum::full);
    CHECK(completed == csum::load_be16(&copy[field]));
}

TEST_CASE("a UDP checksum of zero (none) stays zero through a rewrite") {
    auto bytes = test::build({.protocol = ipproto::udp, .udp_zero_checksum = true});
    auto p = test::view(bytes);
    p.rewrite_destination(test::ip("172.19.2.3"));
    CHECK(csum::load_be16(&bytes[26]) == 0);
    CHECK(ipv4_header_checksum_ok(p));
}

TEST_CASE("rewrites of real packets match scapy's own rebuild byte for byte") {
    // IPv4, and IPv6 with extension headers, fragments and ICMPv6 (its pseudo-header).
    const std::string family = GENERATE(std::string("4"), std::string("6"));
    const std::string out = std::string(NM_BINARY_DIR) + "/pcore_scapy_rewrites" + family + ".txt";
    const std::string cmd = "/usr/bin/python3 " + std::string(NM_SOURCE_DIR) +
                            "/tests/tunnel/scapy_rewrites.py " + out + " " + family;
    REQUIRE(std::system(cmd.c_str()) == 0);
    std::ifstream in(out);
    std::string line;
    int cases = 0;
    auto unhex = [](const std::string& h) {
        std::vector<uint8_t> v(h.size() / 2);
        for (size_t i = 0; i < v.size(); ++i)
            v[i] = static_cast<uint8_t>(std::stoi(h.substr(2 * i, 2), nullptr, 16));
        return v;
    };
    auto rewrite = [&](PacketView& view, const auto& src, const auto& dst) {
        if (cases % 2) {
            view.rewrite_source(src);
            view.rewrite_destination(dst);
        } else {
            view.rewrite_addresses(src, dst);
        }
    };
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string original, src, dst, expected;
        fields >> original >> src >> dst >> expected;
        auto packet = unhex(original);
        auto view = PacketView::parse(packet);
        INFO(line);
        REQUIRE(view);
        if (family == "4") {
            rewrite(*view, test::ip(src.c_str()), test::ip(dst.c_str()));
        } else {
            REQUIRE(view->is_ipv6());
            rewrite(*view, *Ipv6::parse(src), *Ipv6::parse(dst));
        }
        REQUIRE(packet == unhex(expected));
        ++cases;
    }
    CHECK(cases >= 500);
}

TEST_CASE("the native-order sum gives the same checksum as the host-order sum, at every length") {
    std::mt19937 random(7);
    std::vector<uint8_t> bytes(1500);
    for (auto& b : bytes) b = static_cast<uint8_t>(random());
    for (size_t length : {0, 1, 2, 3, 7, 8, 9, 20, 63, 1499, 1500}) {
        INFO("length " << length);
        const uint16_t oracle = static_cast<uint16_t>(~naive_fold(naive_sum(bytes.data(), length)));
        uint8_t stored[2];
        csum::store_native16(
            stored, static_cast<uint16_t>(~csum::fold(csum::add_native(bytes.data(), length))));
        CHECK(csum::load_be16(stored) == oracle);
        CHECK(csum::checksum(std::span<const uint8_t>(bytes.data(), length)) == oracle);
    }
}
