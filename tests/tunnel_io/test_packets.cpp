#include "test_packets.hpp"

#include <cstring>

namespace nm::test {
namespace {

void be16(uint8_t* p, uint32_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
void be32(uint8_t* p, uint32_t v) {
    be16(p, v >> 16);
    be16(p + 2, v & 0xffff);
}
uint16_t rd16(const uint8_t* p) {
    return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

uint32_t pseudo(std::span<const uint8_t> packet, size_t l4, uint8_t protocol) {
    const bool v6 = (packet[0] >> 4) == 6;
    uint32_t sum = reference_sum(packet.subspan(v6 ? 8 : 12, v6 ? 32 : 8));
    sum += protocol;
    sum += static_cast<uint32_t>(packet.size() - l4);
    return sum;
}

uint16_t fold(uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(sum);
}

// The IP header, for a packet of `l4_bytes` after it.
std::vector<uint8_t> ip_header(const Flow& flow, uint8_t protocol, size_t l4_bytes, uint16_t id,
                               uint8_t ttl, uint8_t tos) {
    std::vector<uint8_t> h(flow.v6 ? 40 : 20, 0);
    if (flow.v6) {
        h[0] = static_cast<uint8_t>(0x60 | tos >> 4);
        h[1] = static_cast<uint8_t>(tos << 4);
        be16(&h[4], static_cast<uint32_t>(l4_bytes));
        h[6] = protocol;
        h[7] = ttl;
        std::memcpy(&h[8], flow.src.data(), 16);
        std::memcpy(&h[24], flow.dst.data(), 16);
    } else {
        h[0] = 0x45;
        h[1] = tos;
        be16(&h[2], static_cast<uint32_t>(20 + l4_bytes));
        be16(&h[4], id);
        h[6] = 0x40;  // DF
        h[8] = ttl;
        h[9] = protocol;
        std::memcpy(&h[12], flow.src.data(), 4);
        std::memcpy(&h[16], flow.dst.data(), 4);
        be16(&h[10], static_cast<uint16_t>(~reference_sum(h)));
    }
    return h;
}

}  // namespace

std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
    std::vector<uint8_t> v(n);
    uint32_t x = seed * 2654435761u + 1;
    for (auto& b : v) {
        x = x * 1103515245u + 12345u;
        b = static_cast<uint8_t>(x >> 16);
    }
    return v;
}

std::vector<uint8_t> timestamp_option(uint32_t value, uint32_t echo) {
    std::vector<uint8_t> o = {1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0};
    be32(&o[4], value);
    be32(&o[8], echo);
    return o;
}

uint16_t reference_sum(std::span<const uint8_t> bytes, uint32_t start) {
    uint32_t sum = start;
    for (size_t i = 0; i < bytes.size(); i += 2)
        sum += static_cast<uint32_t>(bytes[i] << 8) | (i + 1 < bytes.size() ? bytes[i + 1] : 0);
    return fold(sum);
}

std::vector<uint8_t> tcp_packet(const TcpSpec& s) {
    const size_t tcp_len = 20 + s.options.size();
    std::vector<uint8_t> packet =
        ip_header(s.flow, 6, tcp_len + s.payload.size(), s.id, s.ttl, s.tos);
    const size_t l4 = packet.size();
    packet.resize(l4 + tcp_len);
    uint8_t* t = &packet[l4];
    be16(t, s.flow.sport);
    be16(t + 2, s.flow.dport);
    be32(t + 4, s.seq);
    be32(t + 8, s.ack);
    t[12] = static_cast<uint8_t>(tcp_len / 4 << 4);
    t[13] = s.flags;
    be16(t + 14, s.window);
    if (!s.options.empty()) std::memcpy(t + 20, s.options.data(), s.options.size());
    packet.insert(packet.end(), s.payload.begin(), s.payload.end());
    const uint16_t sum = reference_sum(std::span(packet).subspan(l4), pseudo(packet, l4, 6));
    be16(&packet[l4 + 16], static_cast<uint16_t>(~sum));
    return packet;
}

std::vector<uint8_t> udp_packet(const Flow& flow, std::span<const uint8_t> payload, uint16_t id) {
    std::vector<uint8_t> packet = ip_header(flow, 17, 8 + payload.size(), id, 64, 0);
    const size_t l4 = packet.size();
    packet.resize(l4 + 8);
    be16(&packet[l4], flow.sport);
    be16(&packet[l4 + 2], flow.dport);
    be16(&packet[l4 + 4], static_cast<uint32_t>(8 + payload.size()));
    packet.insert(packet.end(), payload.begin(), payload.end());
    uint16_t sum = static_cast<uint16_t>(
        ~reference_sum(std::span(packet).subspan(l4), pseudo(packet, l4, 17)));
    be16(&packet[l4 + 6], sum == 0 ? 0xffff : sum);
    return packet;
}

Parsed parse(std::span<const uint8_t> p) {
    Parsed r;
    r.v6 = (p[0] >> 4) == 6;
    r.l4 = r.v6 ? 40 : size_t{p[0] & 0x0fu} * 4;
    r.protocol = r.v6 ? p[6] : p[9];
    r.ip_length = r.v6 ? static_cast<uint16_t>(40 + rd16(&p[4])) : rd16(&p[2]);
    r.id = r.v6 ? 0 : rd16(&p[4]);
    if (r.protocol == 6) {
        r.headers = r.l4 + static_cast<size_t>(p[r.l4 + 12] >> 4) * 4;
        r.seq = static_cast<uint32_t>(rd16(&p[r.l4 + 4])) << 16 | rd16(&p[r.l4 + 6]);
        r.flags = p[r.l4 + 13];
    } else {
        r.headers = r.l4 + 8;
    }
    r.payload = p.subspan(r.headers);
    return r;
}

VirtioNetHdr make_partial(std::vector<uint8_t>& packet, uint16_t gso_size) {
    const Parsed p = parse(packet);
    const size_t field = p.l4 + (p.protocol == 6 ? 16 : 6);
    be16(&packet[field], fold(pseudo(packet, p.l4, p.protocol)));
    VirtioNetHdr h;
    h.flags = VirtioNetHdr::kNeedsCsum;
    h.csum_start = static_cast<uint16_t>(p.l4);
    h.csum_offset = p.protocol == 6 ? 16 : 6;
    h.hdr_len = static_cast<uint16_t>(p.headers);
    if (gso_size) {
        h.gso_size = gso_size;
        h.gso_type = p.protocol == 17 ? VirtioNetHdr::kGsoUdpL4
                     : p.v6           ? VirtioNetHdr::kGsoTcpV6
                                      : VirtioNetHdr::kGsoTcpV4;
    }
    return h;
}

bool checksums_ok(std::span<const uint8_t> packet) {
    const Parsed p = parse(packet);
    if (p.ip_length != packet.size()) return false;
    if (!p.v6 && reference_sum(packet.first(p.l4)) != 0xffff) return false;
    if (p.protocol != 6 && p.protocol != 17) return true;
    if (p.protocol == 17 && rd16(&packet[p.l4 + 6]) == 0) return false;  // we always send one
    return reference_sum(packet.subspan(p.l4), pseudo(packet, p.l4, p.protocol)) == 0xffff;
}

std::vector<std::span<const uint8_t>> segments_of(const Packet& p) {
    std::vector<std::span<const uint8_t>> v;
    for_each_datagram(p, [&](std::span<uint8_t> d) { v.push_back(d); });
    return v;
}

}  // namespace nm::test
