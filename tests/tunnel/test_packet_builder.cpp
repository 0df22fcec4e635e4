#include "test_packet_builder.hpp"

#include <algorithm>
#include <catch2/catch.hpp>

#include "core/checksum.hpp"

namespace nm::test {

Ipv4 ip(const char* text) {
    auto r = Ipv4::parse(text);
    REQUIRE(r);
    return *r;
}

namespace {
// The TCP, UDP or ICMP(v6) echo header at p (checksums left to fill_checksums).
void write_l4(uint8_t* p, uint8_t protocol, uint16_t source_port, uint16_t destination_port,
              uint8_t tcp_flags, uint8_t icmp_type, size_t payload) {
    if (protocol == ipproto::tcp) {
        csum::store_be16(p, source_port);
        csum::store_be16(p + 2, destination_port);
        csum::store_be32(p + 4, 1000);
        p[12] = 5 << 4;
        p[13] = tcp_flags;
        csum::store_be16(p + 14, 65535);
    } else if (protocol == ipproto::udp) {
        csum::store_be16(p, source_port);
        csum::store_be16(p + 2, destination_port);
        csum::store_be16(p + 4, static_cast<uint16_t>(8 + payload));
    } else if (protocol == ipproto::icmp || protocol == ipproto::icmpv6) {
        p[0] = icmp_type;
        csum::store_be16(p + 4, source_port);  // echo identifier
        csum::store_be16(p + 6, 1);            // sequence
    }
}
}  // namespace

std::vector<uint8_t> build(const PacketSpec& s) {
    size_t l4 = s.protocol == ipproto::tcp ? 20 : 8;
    if (s.fragment_field & 0x1fff) l4 = 0;  // a non-first fragment: payload only
    std::vector<uint8_t> b(20 + l4 + s.payload);
    b[0] = 0x45;
    csum::store_be16(&b[2], static_cast<uint16_t>(b.size()));
    csum::store_be16(&b[4], 0x1234);
    csum::store_be16(&b[6], s.fragment_field);
    b[8] = s.ttl;
    b[9] = s.protocol;
    csum::store_be32(&b[12], s.source.value);
    csum::store_be32(&b[16], s.destination.value);
    uint8_t* p = b.data() + 20;
    for (size_t i = 0; i < s.payload; ++i) p[l4 + i] = static_cast<uint8_t>(i * 7 + 3);
    if (l4) {
        write_l4(p, s.protocol, s.source_port, s.destination_port, s.tcp_flags, s.icmp_type,
                 s.payload);
        // ICMPv4 has no pseudo-header: its checksum is complete here.
        if (s.protocol == ipproto::icmp)
            csum::store_be16(p + 2, csum::checksum({p, l4 + s.payload}));
    }
    auto v = PacketView::parse(b);
    REQUIRE(v);
    fill_checksums(*v);
    if (s.udp_zero_checksum && s.protocol == ipproto::udp) csum::store_be16(p + 6, 0);
    return b;
}

Ipv6 ip6(const char* text) {
    auto r = Ipv6::parse(text);
    REQUIRE(r);
    return *r;
}

std::vector<uint8_t> build6(const PacketSpec6& s) {
    std::vector<uint8_t> b(40);
    b[0] = 0x60;
    b[7] = s.hop_limit;
    const auto src = ip6(s.source), dst = ip6(s.destination);
    std::copy(src.bytes.begin(), src.bytes.end(), b.begin() + 8);
    std::copy(dst.bytes.begin(), dst.bytes.end(), b.begin() + 24);
    b[6] = s.extensions.empty() ? s.protocol : s.extensions.front();
    bool non_first = false;
    for (size_t i = 0; i < s.extensions.size(); ++i) {
        const size_t at = b.size();
        b.resize(at + 8);
        b[at] = i + 1 < s.extensions.size() ? s.extensions[i + 1] : s.protocol;
        if (s.extensions[i] == ipproto::fragment) {
            csum::store_be16(&b[at + 2], static_cast<uint16_t>(s.fragment_offset << 3 |
                                                               (s.more_fragments ? 1 : 0)));
            csum::store_be32(&b[at + 4], s.fragment_id);
            non_first = s.fragment_offset != 0;
        } else if (s.extensions[i] != ipproto::routing) {
            b[at + 2] = 1;  // a PadN option filling the header
            b[at + 3] = 4;
        }
    }
    const size_t l4 = b.size();
    const size_t l4h = non_first ? 0 : s.protocol == ipproto::tcp ? 20 : 8;
    b.resize(l4 + l4h + s.payload);
    uint8_t* p = b.data() + l4;
    for (size_t i = 0; i < s.payload; ++i) p[l4h + i] = static_cast<uint8_t>(i * 7 + 3);
    csum::store_be16(&b[4], static_cast<uint16_t>(b.size() - 40));
    if (l4h)
        write_l4(p, s.protocol, s.source_port, s.destination_port, s.tcp_flags, s.icmp_type,
                 s.payload);
    // A chain parse() refuses (a test of that) is returned without checksums.
    if (auto v = PacketView::parse(b)) fill_checksums(*v);
    return b;
}

PacketView view(std::vector<uint8_t>& bytes) {
    auto v = PacketView::parse(bytes);
    REQUIRE(v);
    return *v;
}

}  // namespace nm::test
