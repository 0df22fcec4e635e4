#include "core/packet.hpp"

#include <catch2/catch.hpp>

#include "core/checksum.hpp"
#include "test_packet_builder.hpp"

using namespace nm;
using namespace nm::test;

TEST_CASE("a TCP packet exposes its addresses, ports and flags") {
    auto bytes = build({.protocol = ipproto::tcp,
                        .source_port = 40000,
                        .destination_port = 80,
                        .tcp_flags = 0x11});
    auto p = view(bytes);
    CHECK(p.is_ipv4());
    CHECK(p.protocol() == ipproto::tcp);
    CHECK(p.source() == ip("172.19.1.2"));
    CHECK(p.destination() == ip("172.30.0.4"));
    CHECK(p.has_ports());
    CHECK(p.source_port() == 40000);
    CHECK(p.destination_port() == 80);
    CHECK(p.tcp_fin_or_rst());
    CHECK(p.fragment() == Fragment::none);
    CHECK(p.ttl() == 64);
    CHECK(ipv4_header_checksum_ok(p));
}

TEST_CASE("a UDP packet exposes its ports") {
    auto bytes = build({.protocol = ipproto::udp, .source_port = 5353, .destination_port = 53});
    auto p = view(bytes);
    CHECK(p.source_port() == 5353);
    CHECK(p.destination_port() == 53);
    CHECK(p.tcp_flags() == 0);
}

TEST_CASE("an ICMP echo's identifier is both its ports, so a reply matches its request") {
    auto type = GENERATE(uint8_t{8}, uint8_t{0});
    auto bytes = build({.protocol = ipproto::icmp, .source_port = 777, .icmp_type = type});
    auto p = view(bytes);
    CHECK(p.has_ports());
    CHECK(p.source_port() == 777);
    CHECK(p.destination_port() == 777);
    CHECK(p.l4_checksum_offset() == 0);  // no pseudo-header: address rewrites leave it alone
}

TEST_CASE("other ICMP messages have no ports") {
    auto bytes = build({.protocol = ipproto::icmp, .source_port = 777, .icmp_type = 3});
    auto p = view(bytes);
    CHECK_FALSE(p.has_ports());
    CHECK(p.source_port() == 0);
}

TEST_CASE("fragments are told apart: a first fragment has ports, a later one has none") {
    auto first = build({.protocol = ipproto::udp, .fragment_field = 0x2000});
    CHECK(view(first).fragment() == Fragment::first);
    CHECK(view(first).has_ports());
    auto later = build({.protocol = ipproto::udp, .fragment_field = 0x0003});
    CHECK(view(later).fragment() == Fragment::non_first);
    CHECK_FALSE(view(later).has_ports());
    CHECK(view(later).l4_checksum_offset() == 0);
}

TEST_CASE("a buffer longer than the IPv4 total length is trimmed to the packet") {
    auto bytes = build({.protocol = ipproto::udp, .payload = 4});
    const size_t length = bytes.size();
    bytes.resize(length + 30, 0xee);
    CHECK(view(bytes).bytes().size() == length);
}

TEST_CASE("an IPv6 packet exposes its fixed header and ports") {
    std::vector<uint8_t> b(40 + 8 + 4, 0);
    b[0] = 0x60;
    csum::store_be16(&b[4], 12);
    b[6] = ipproto::udp;
    b[7] = 63;
    b[8] = 0xfd;
    b[39] = 0x01;
    csum::store_be16(&b[40], 1234);
    csum::store_be16(&b[42], 4321);
    auto p = view(b);
    CHECK(p.version() == 6);
    CHECK_FALSE(p.is_ipv4());
    CHECK(p.protocol() == ipproto::udp);
    CHECK(p.ttl() == 63);
    CHECK(p.source6()[0] == 0xfd);
    CHECK(p.destination6()[15] == 0x01);
    CHECK(p.source_port() == 1234);
    CHECK(p.destination_port() == 4321);
    CHECK(p.source() == Ipv4{});
}

TEST_CASE("malformed packets are rejected with the reason") {
    auto tcp = build({.protocol = ipproto::tcp, .payload = 0});
    auto check = [](std::vector<uint8_t> b, ParseError expected) {
        auto r = PacketView::parse(b);
        REQUIRE_FALSE(r);
        CHECK(r.error() == expected);
        CHECK_FALSE(to_string(r.error()).empty());
    };
    SECTION("empty") {
        check({}, ParseError::empty);
    }
    SECTION("version 5") {
        auto b = tcp;
        b[0] = 0x55;
        check(b, ParseError::bad_version);
    }
    SECTION("shorter than an IPv4 header") {
        check(std::vector<uint8_t>(tcp.begin(), tcp.begin() + 19), ParseError::truncated_header);
    }
    SECTION("IHL below 5") {
        auto b = tcp;
        b[0] = 0x44;
        check(b, ParseError::bad_header_length);
    }
    SECTION("IHL past the buffer") {
        auto b = tcp;
        b[0] = 0x4f;
        check(b, ParseError::bad_header_length);
    }
    SECTION("total length past the buffer") {
        auto b = tcp;
        csum::store_be16(&b[2], static_cast<uint16_t>(b.size() + 1));
        check(b, ParseError::bad_total_length);
    }
    SECTION("total length shorter than the header") {
        auto b = tcp;
        csum::store_be16(&b[2], 19);
        check(b, ParseError::bad_total_length);
    }
    SECTION("TCP header cut short") {
        auto b = tcp;
        b.resize(30);
        csum::store_be16(&b[2], 30);
        check(b, ParseError::truncated_l4);
    }
    SECTION("TCP data offset below 5") {
        auto b = tcp;
        b[32] = 4 << 4;
        check(b, ParseError::bad_tcp_offset);
    }
    SECTION("TCP data offset past the packet") {
        auto b = tcp;
        b[32] = 6 << 4;
        check(b, ParseError::bad_tcp_offset);
    }
    SECTION("IPv6 payload length past the buffer") {
        std::vector<uint8_t> b(40, 0);
        b[0] = 0x60;
        csum::store_be16(&b[4], 1);
        check(b, ParseError::bad_total_length);
    }
    SECTION("shorter than an IPv6 header") {
        std::vector<uint8_t> b(39, 0);
        b[0] = 0x60;
        check(b, ParseError::truncated_header);
    }
}

TEST_CASE("every prefix of a valid packet either parses within its bounds or is rejected") {
    auto proto = GENERATE(ipproto::tcp, ipproto::udp, ipproto::icmp);
    auto full = build({.protocol = proto, .payload = 9});
    for (size_t n = 0; n <= full.size(); ++n) {
        // A fresh exact-size heap buffer, so a read past it would be caught by ASan builds.
        std::vector<uint8_t> b(full.begin(), full.begin() + static_cast<long>(n));
        auto r = PacketView::parse(b);
        if (n < full.size()) {
            CHECK_FALSE(r);
        } else {
            CHECK(r);
        }
    }
}

TEST_CASE(
    "an IPv6 packet exposes its addresses, upper-layer protocol and ports behind extensions") {
    auto bytes = build6({.protocol = ipproto::tcp,
                         .source = "fc00::102",
                         .destination = "fdff:2000::10",
                         .source_port = 40000,
                         .destination_port = 443,
                         .extensions = {ipproto::hop_by_hop, ipproto::destination_options}});
    auto p = view(bytes);
    CHECK(p.is_ipv6());
    CHECK(p.protocol() == ipproto::tcp);
    CHECK(p.l4_offset() == 56);
    CHECK(p.source_v6() == ip6("fc00::102"));
    CHECK(p.destination_v6() == ip6("fdff:2000::10"));
    CHECK(p.source_port() == 40000);
    CHECK(p.destination_port() == 443);
    CHECK(p.l4_checksum_offset() == 56 + 16);
}

TEST_CASE("an ICMPv6 echo has ports and a checksum field, as its pseudo-header holds addresses") {
    auto bytes = build6({.protocol = ipproto::icmpv6, .source_port = 99});
    auto p = view(bytes);
    CHECK(p.has_ports());
    CHECK(p.source_port() == 99);
    CHECK(p.l4_checksum_offset() == 42);
}

TEST_CASE("an IPv6 extension header chain cut short or too long is refused") {
    SECTION("a header past the end") {
        auto bytes = build6({.extensions = {ipproto::hop_by_hop}, .payload = 0});
        bytes[40 + 1] = 9;  // claims 80 bytes
        CHECK(PacketView::parse(bytes).error() == ParseError::bad_extension);
    }
    SECTION("more than eight headers") {
        std::vector<uint8_t> chain(9, ipproto::destination_options);
        auto bytes = build6({.extensions = chain});
        CHECK(PacketView::parse(bytes).error() == ParseError::bad_extension);
    }
}
