#include "core/packet.hpp"

#include <cstring>

#include "core/checksum.hpp"

namespace nm {

using csum::load_be16;
using csum::load_be32;
using csum::store_be16;
using csum::store_be32;

std::string_view to_string(ParseError error) {
    switch (error) {
        case ParseError::empty:
            return "empty packet";
        case ParseError::bad_version:
            return "IP version is neither 4 nor 6";
        case ParseError::truncated_header:
            return "shorter than the IP header";
        case ParseError::bad_header_length:
            return "IPv4 header length out of range";
        case ParseError::bad_total_length:
            return "IP length field does not fit the buffer";
        case ParseError::truncated_l4:
            return "transport header cut short";
        case ParseError::bad_tcp_offset:
            return "TCP data offset out of range";
        case ParseError::bad_extension:
            return "IPv6 extension header cut short or too many";
    }
    return "?";
}

namespace {
constexpr uint8_t icmp_echo_reply = 0, icmp_echo_request = 8;
constexpr uint8_t icmpv6_echo_request = 128, icmpv6_echo_reply = 129;
constexpr int max_extension_headers = 8;

struct Ipv6Walk {
    size_t l4 = 40;
    uint8_t protocol = 0;
    Fragment fragment = Fragment::none;
    uint32_t fragment_id = 0;
    bool has_l4 = true;
};

// Walks hop-by-hop, routing, destination options and fragment headers to the upper layer.
tl::expected<Ipv6Walk, ParseError> walk_ipv6(std::span<const uint8_t> packet) {
    Ipv6Walk w;
    w.protocol = packet[6];
    for (int n = 0;; ++n) {
        const uint8_t next = w.protocol;
        if (next != ipproto::hop_by_hop && next != ipproto::routing &&
            next != ipproto::destination_options && next != ipproto::fragment)
            return w;
        if (n == max_extension_headers || w.l4 + 8 > packet.size())
            return tl::unexpected(ParseError::bad_extension);
        const uint8_t* h = packet.data() + w.l4;
        if (next == ipproto::fragment) {
            const uint16_t field = load_be16(h + 2);
            const uint16_t offset = field >> 3;
            const bool more = field & 1;
            w.fragment = offset ? Fragment::non_first : more ? Fragment::first : Fragment::none;
            w.fragment_id = load_be32(h + 4);
            w.protocol = h[0];
            w.l4 += 8;
            if (offset) {
                w.has_l4 = false;
                return w;
            }
            continue;
        }
        const size_t length = (size_t{h[1]} + 1) * 8;
        if (w.l4 + length > packet.size()) return tl::unexpected(ParseError::bad_extension);
        w.protocol = h[0];
        w.l4 += length;
    }
}
}  // namespace

tl::expected<PacketView, ParseError> PacketView::parse(std::span<uint8_t> buffer) {
    if (buffer.empty()) return tl::unexpected(ParseError::empty);
    PacketView v;
    const uint8_t version = buffer[0] >> 4;
    size_t l4 = 0;
    bool has_l4 = true;  // the L4 header is in this packet (not a non-first fragment)
    if (version == 4) {
        if (buffer.size() < 20) return tl::unexpected(ParseError::truncated_header);
        const size_t ihl = size_t{buffer[0] & 0x0fu} * 4;
        if (ihl < 20 || ihl > buffer.size()) return tl::unexpected(ParseError::bad_header_length);
        const size_t total = load_be16(&buffer[2]);
        if (total < ihl || total > buffer.size())
            return tl::unexpected(ParseError::bad_total_length);
        v.bytes_ = buffer.first(total);
        v.protocol_ = buffer[9];
        v.ttl_ = buffer[8];
        const uint16_t frag = load_be16(&buffer[6]);
        const bool more = frag & 0x2000;
        const uint16_t offset = frag & 0x1fff;
        v.fragment_ = offset ? Fragment::non_first : more ? Fragment::first : Fragment::none;
        if (v.fragment_ != Fragment::none) v.fragment_id_ = load_be16(&buffer[4]);
        has_l4 = offset == 0;
        l4 = ihl;
    } else if (version == 6) {
        if (buffer.size() < 40) return tl::unexpected(ParseError::truncated_header);
        const size_t total = 40 + size_t{load_be16(&buffer[4])};
        if (total > buffer.size()) return tl::unexpected(ParseError::bad_total_length);
        v.bytes_ = buffer.first(total);
        v.ttl_ = buffer[7];
        auto walk = walk_ipv6(v.bytes_);
        if (!walk) return tl::unexpected(walk.error());
        v.protocol_ = walk->protocol;
        v.fragment_ = walk->fragment;
        v.fragment_id_ = walk->fragment_id;
        has_l4 = walk->has_l4;
        l4 = walk->l4;
    } else {
        return tl::unexpected(ParseError::bad_version);
    }
    v.l4_offset_ = static_cast<uint16_t>(l4);
    if (!has_l4) return v;

    const size_t room = v.bytes_.size() - l4;
    const uint8_t* p = v.bytes_.data() + l4;
    switch (v.protocol_) {
        case ipproto::tcp: {
            if (room < 20) return tl::unexpected(ParseError::truncated_l4);
            const size_t doff = static_cast<size_t>(p[12] >> 4) * 4;
            if (doff < 20 || doff > room) return tl::unexpected(ParseError::bad_tcp_offset);
            v.source_port_ = load_be16(p);
            v.destination_port_ = load_be16(p + 2);
            v.tcp_flags_ = p[13];
            v.has_ports_ = true;
            v.l4_csum_offset_ = static_cast<uint16_t>(l4 + 16);
            break;
        }
        case ipproto::udp: {
            if (room < 8) return tl::unexpected(ParseError::truncated_l4);
            v.source_port_ = load_be16(p);
            v.destination_port_ = load_be16(p + 2);
            v.has_ports_ = true;
            v.l4_csum_offset_ = static_cast<uint16_t>(l4 + 6);
            break;
        }
        case ipproto::icmp:
        case ipproto::icmpv6: {
            if (room < 8) return tl::unexpected(ParseError::truncated_l4);
            const bool v4 = v.protocol_ == ipproto::icmp && version == 4;
            const bool v6 = v.protocol_ == ipproto::icmpv6 && version == 6;
            const bool echo = (v4 && (p[0] == icmp_echo_request || p[0] == icmp_echo_reply)) ||
                              (v6 && (p[0] == icmpv6_echo_request || p[0] == icmpv6_echo_reply));
            if (echo) {
                v.source_port_ = v.destination_port_ = load_be16(p + 4);
                v.has_ports_ = true;
            }
            // ICMPv4's checksum has no pseudo-header; ICMPv6's has, so address rewrites touch it.
            if (v6) v.l4_csum_offset_ = static_cast<uint16_t>(l4 + 2);
            break;
        }
        default:
            break;
    }
    return v;
}

void PacketView::rewrite_source(Ipv4 address, L4Csum mode) {
    rewrite_address(12, address, mode);
}
void PacketView::rewrite_destination(Ipv4 address, L4Csum mode) {
    rewrite_address(16, address, mode);
}

void PacketView::rewrite_address(size_t offset, Ipv4 address, L4Csum mode) {
    if (!is_ipv4()) return;
    uint8_t* ip = bytes_.data();
    const uint32_t old = load_be32(ip + offset);
    if (old == address.value) return;
    store_be32(ip + offset, address.value);
    update_checksums(csum::delta32(old, address.value), mode);
}

void PacketView::rewrite_addresses(Ipv4 source, Ipv4 destination, L4Csum mode) {
    if (!is_ipv4()) return;
    uint8_t* ip = bytes_.data();
    const uint32_t old_source = load_be32(ip + 12), old_destination = load_be32(ip + 16);
    if (old_source == source.value && old_destination == destination.value) return;
    store_be32(ip + 12, source.value);
    store_be32(ip + 16, destination.value);
    update_checksums(
        csum::delta32(old_source, source.value) + csum::delta32(old_destination, destination.value),
        mode);
}

void PacketView::rewrite_source(const Ipv6& address, L4Csum mode) {
    rewrite_address6(8, address, mode);
}
void PacketView::rewrite_destination(const Ipv6& address, L4Csum mode) {
    rewrite_address6(24, address, mode);
}

void PacketView::rewrite_address6(size_t offset, const Ipv6& address, L4Csum mode) {
    if (!is_ipv6()) return;
    uint8_t* field = bytes_.data() + offset;
    const uint64_t delta = csum::delta128(field, address.bytes.data());
    std::memcpy(field, address.bytes.data(), 16);
    update_l4_checksum(delta, mode);
}

void PacketView::rewrite_addresses(const Ipv6& source, const Ipv6& destination, L4Csum mode) {
    if (!is_ipv6()) return;
    uint8_t* ip = bytes_.data();
    const uint64_t delta = csum::delta128(ip + 8, source.bytes.data()) +
                           csum::delta128(ip + 24, destination.bytes.data());
    std::memcpy(ip + 8, source.bytes.data(), 16);
    std::memcpy(ip + 24, destination.bytes.data(), 16);
    update_l4_checksum(delta, mode);
}

void PacketView::update_checksums(uint64_t delta, L4Csum mode) {
    uint8_t* ip = bytes_.data();
    store_be16(ip + 10, csum::update(load_be16(ip + 10), delta));
    update_l4_checksum(delta, mode);
}

void PacketView::update_l4_checksum(uint64_t delta, L4Csum mode) {
    if (!l4_csum_offset_) return;
    uint8_t* field = bytes_.data() + l4_csum_offset_;
    const uint16_t value = load_be16(field);
    if (mode == L4Csum::partial) {
        store_be16(field, csum::update_partial(value, delta));
    } else if (protocol_ == ipproto::udp) {
        if (value == 0) return;  // the sender sent no checksum (RFC 768)
        const uint16_t updated = csum::update(value, delta);
        store_be16(field, updated == 0 ? 0xffff : updated);  // 0 would mean "none"
    } else {
        store_be16(field, csum::update(value, delta));
    }
}

namespace {
void fill_checksums_v6(PacketView& packet, L4Csum mode) {
    auto bytes = packet.bytes();
    const size_t field = packet.l4_checksum_offset();
    if (!field || packet.fragment() != Fragment::none) return;
    const size_t l4 = packet.l4_offset();
    const uint32_t l4_length = static_cast<uint32_t>(bytes.size() - l4);
    const uint64_t pseudo = csum::add(bytes.subspan(8, 32)) + packet.protocol() +
                            (l4_length >> 16) + (l4_length & 0xffff);
    uint8_t* at = bytes.data() + field;
    if (mode == L4Csum::partial) {
        store_be16(at, csum::fold(pseudo));
        return;
    }
    store_be16(at, 0);
    uint16_t value = static_cast<uint16_t>(~csum::fold(csum::add(bytes.subspan(l4), pseudo)));
    if (packet.protocol() == ipproto::udp && value == 0) value = 0xffff;
    store_be16(at, value);
}
}  // namespace

void fill_checksums(PacketView& packet, L4Csum mode) {
    if (packet.is_ipv6()) return fill_checksums_v6(packet, mode);
    if (!packet.is_ipv4()) return;
    auto bytes = packet.bytes();
    uint8_t* ip = bytes.data();
    const size_t ihl = packet.l4_offset();
    store_be16(ip + 10, 0);
    store_be16(ip + 10, csum::checksum(bytes.first(ihl)));
    const size_t field = packet.l4_checksum_offset();
    if (!field || packet.fragment() != Fragment::none) return;
    const uint32_t l4_length = static_cast<uint32_t>(bytes.size() - ihl);
    const uint64_t pseudo = csum::pseudo_header_v4(
        packet.source().value, packet.destination().value, packet.protocol(), l4_length);
    if (mode == L4Csum::partial) {
        store_be16(ip + field, csum::fold(pseudo));
        return;
    }
    store_be16(ip + field, 0);
    uint16_t value = static_cast<uint16_t>(~csum::fold(csum::add(bytes.subspan(ihl), pseudo)));
    if (packet.protocol() == ipproto::udp && value == 0) value = 0xffff;
    store_be16(ip + field, value);
}

bool ipv4_header_checksum_ok(const PacketView& packet) {
    if (!packet.is_ipv4()) return false;
    return csum::fold(csum::add(packet.bytes().first(packet.l4_offset()))) == 0xffff;
}

}  // namespace nm
