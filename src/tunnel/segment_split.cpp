// split(): a TUN read becomes ordinary IP packets (see segmentation.hpp).
#include <algorithm>
#include <string>

#include "core/checksum.hpp"
#include "tunnel/segmentation.hpp"

namespace nm {
namespace {

constexpr uint8_t kTcpFin = 0x01, kTcpPsh = 0x08, kTcpCwr = 0x80;
constexpr uint8_t kProtoTcp = 6, kProtoUdp = 17;

// Where the parts of a GSO packet are.
struct GsoLayout {
    size_t length = 0;   // IP packet bytes (from the IP header, not the read size)
    size_t l4 = 0;       // offset of the TCP/UDP header
    size_t headers = 0;  // offset of the payload
    size_t segment = 0;  // payload bytes per segment
    size_t count = 0;    // segments
    uint8_t protocol = 0;
    bool v6 = false;
};

Result<GsoLayout> gso_layout(const Packet& p, size_t max_packet) {
    const auto bytes = p.bytes;
    const VirtioNetHdr& h = p.vnet;
    GsoLayout g;
    if (bytes.size() < 20)
        return fail(Errc::invalid_argument, "GSO packet shorter than an IP header");
    const unsigned version = bytes[0] >> 4;
    if (version == 4) {
        const size_t ihl = size_t{bytes[0] & 0x0fu} * 4;
        g.length = csum::load_be16(&bytes[2]);
        if (ihl < 20 || g.length < ihl || g.length > bytes.size())
            return fail(Errc::invalid_argument, "GSO packet with a bad IPv4 header length");
        g.l4 = ihl;
        g.protocol = bytes[9];
    } else if (version == 6) {
        if (bytes.size() < 40)
            return fail(Errc::invalid_argument, "GSO packet shorter than IPv6 header");
        g.v6 = true;
        g.length = 40 + size_t{csum::load_be16(&bytes[4])};
        if (g.length > bytes.size())
            return fail(Errc::invalid_argument, "GSO packet with a bad IPv6 payload length");
        g.l4 = 40;
        g.protocol = bytes[6];
    } else {
        return fail(Errc::invalid_argument, "GSO packet is neither IPv4 nor IPv6");
    }
    // With extension headers only csum_start says where TCP/UDP begins.
    if (h.needs_csum() && h.csum_start != g.l4) {
        if (!g.v6 || h.csum_start < 40)
            return fail(Errc::invalid_argument, "GSO csum_start does not point past the IP header");
        g.l4 = h.csum_start;
    }
    switch (h.gso()) {
        case VirtioNetHdr::kGsoTcpV4:
        case VirtioNetHdr::kGsoTcpV6:
            if ((h.gso() == VirtioNetHdr::kGsoTcpV4) == g.v6)
                return fail(Errc::invalid_argument, "GSO TCP type does not match the IP version");
            if (g.l4 + 20 > g.length)
                return fail(Errc::invalid_argument, "GSO TCP header truncated");
            g.headers = g.l4 + static_cast<size_t>(bytes[g.l4 + 12] >> 4) * 4;
            if (g.headers < g.l4 + 20 || g.headers > g.length)
                return fail(Errc::invalid_argument, "GSO TCP data offset out of range");
            g.protocol = kProtoTcp;
            break;
        case VirtioNetHdr::kGsoUdpL4:
            g.headers = g.l4 + 8;
            if (g.headers > g.length)
                return fail(Errc::invalid_argument, "GSO UDP header truncated");
            g.protocol = kProtoUdp;
            break;
        default:
            return fail(Errc::invalid_argument,
                        "unsupported GSO type " + std::to_string(h.gso_type));
    }
    if (h.gso_size == 0) return fail(Errc::invalid_argument, "GSO packet with gso_size 0");
    g.segment = h.gso_size;
    if (max_packet <= g.headers)
        return fail(Errc::invalid_argument, "max_packet below header size");
    g.segment = std::min(g.segment, max_packet - g.headers);
    const size_t payload = g.length - g.headers;
    g.count = std::max<size_t>(1, (payload + g.segment - 1) / g.segment);
    return g;
}

void complete_partial_checksum(std::span<uint8_t> bytes, const VirtioNetHdr& h) {
    uint8_t* field = &bytes[size_t{h.csum_start} + h.csum_offset];
    // The field already holds the pseudo-header sum: summing over it completes the checksum.
    const uint16_t sum = static_cast<uint16_t>(
        ~csum::fold(csum::add_native(&bytes[h.csum_start], bytes.size() - h.csum_start)));
    csum::store_native16(field, sum == 0 ? 0xffff : sum);
}

}  // namespace

size_t split_size(const Packet& from_tun, size_t max_packet) {
    if (from_tun.vnet.gso() == VirtioNetHdr::kGsoNone) return 0;
    auto g = gso_layout(from_tun, max_packet);
    if (!g) return 0;
    return g->length + (g->count - 1) * g->headers;
}

Result<Packet> split(const Packet& from_tun, std::span<uint8_t> out, size_t max_packet) {
    Packet result;
    result.peer = from_tun.peer;
    const VirtioNetHdr& h = from_tun.vnet;
    if (h.gso() == VirtioNetHdr::kGsoNone) {
        result.bytes = from_tun.bytes;
        if (h.needs_csum()) {
            if (size_t{h.csum_start} + h.csum_offset + 2 > from_tun.bytes.size())
                return fail(Errc::invalid_argument, "partial checksum field beyond the packet");
            complete_partial_checksum(from_tun.bytes, h);
        }
        return result;
    }
    auto layout = gso_layout(from_tun, max_packet);
    if (!layout) return tl::unexpected(layout.error());
    const GsoLayout& g = *layout;
    const size_t total = g.length + (g.count - 1) * g.headers;
    if (total > out.size())
        return fail(Errc::exhausted, "split needs " + std::to_string(total) +
                                         " bytes of output, has " + std::to_string(out.size()));

    const uint8_t* in = from_tun.bytes.data();
    const size_t payload = g.length - g.headers;
    const uint16_t id0 = g.v6 ? 0 : csum::load_be16(in + 4);
    const uint32_t seq0 = g.protocol == kProtoTcp ? csum::load_be32(in + g.l4 + 4) : 0;
    const size_t stride = g.headers + g.segment;
    for (size_t i = 0; i < g.count; ++i) {
        uint8_t* ip = out.data() + i * stride;
        const size_t offset = i * g.segment;
        const size_t chunk = std::min(g.segment, payload - offset);
        const size_t length = g.headers + chunk;
        std::memcpy(ip, in, g.headers);
        std::memcpy(ip + g.headers, in + g.headers + offset, chunk);
        if (g.v6) {
            csum::store_be16(ip + 4, static_cast<uint16_t>(length - 40));
        } else {
            csum::store_be16(ip + 2, static_cast<uint16_t>(length));
            csum::store_be16(ip + 4, static_cast<uint16_t>(id0 + i));
            csum::set_ipv4_header_checksum(ip);
        }
        uint8_t* l4 = ip + g.l4;
        uint8_t* field;
        if (g.protocol == kProtoTcp) {
            csum::store_be32(l4 + 4, static_cast<uint32_t>(seq0 + offset));
            if (i + 1 < g.count) l4[13] &= static_cast<uint8_t>(~(kTcpFin | kTcpPsh));
            if (i > 0) l4[13] &= static_cast<uint8_t>(~kTcpCwr);
            field = l4 + 16;
        } else {
            csum::store_be16(l4 + 4, static_cast<uint16_t>(length - g.l4));
            field = l4 + 6;
        }
        csum::store_native16(field, 0);
        uint64_t acc =
            csum::pseudo_header_native(ip, g.protocol, static_cast<uint32_t>(length - g.l4));
        acc = csum::add_native(l4, length - g.l4, acc);
        uint16_t sum = static_cast<uint16_t>(~csum::fold(acc));
        if (sum == 0 && g.protocol == kProtoUdp) sum = 0xffff;  // 0 means "no checksum" in UDP
        csum::store_native16(field, sum);
    }
    result.bytes = out.first(total);
    result.segment_size = g.count > 1 ? static_cast<uint16_t>(stride) : 0;
    return result;
}

Result<void> split(const Packet& from_tun, PacketBatch& out, size_t max_packet) {
    const auto buffer = out.next_buffer();
    auto result = split(from_tun, buffer, max_packet);
    if (!result) return tl::unexpected(result.error());
    if (!buffer.empty() && result->bytes.data() == buffer.data())
        out.commit(result->bytes.size()) = *result;
    else
        out.push(*result);
    return {};
}

}  // namespace nm
