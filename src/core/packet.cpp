#include "core/packet.hpp"

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
    }
    return "?";
}

namespace {
constexpr uint8_t icmp_echo_reply = 0, icmp_echo_request = 8;
constexpr uint8_t icmpv6_echo_request = 128, icmpv6_echo_reply = 129;
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
        has_l4 = offset == 0;
        l4 = ihl;
    } else if (version == 6) {
        if (buffer.size() < 40) return tl::unexpected(ParseError::truncated_header);
        const size_t total = 40 + size_t{load_be16(&buffer[4])};
        if (total > buffer.size()) return tl::unexpected(ParseError::bad_total_length);
        v.bytes_ = buffer.first(total);
        v.protocol_ = buffer[6];
        v.ttl_ = buffer[7];
        l4 = 40;  // extension headers are not walked: their packets simply have no ports
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
            // ICMPv4's checksum has no pseudo-header; ICMPv6's has, but IPv6 is not rewritten.
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

void PacketView::update_checksums(uint64_t delta, L4Csum mode) {
    uint8_t* ip = bytes_.data();
    store_be16(ip + 10, csum::update(load_be16(ip + 10), delta));
    if (!l4_csum_offset_) return;
    uint8_t* field = ip + l4_csum_offset_;
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

void fill_checksums(PacketView& packet, L4Csum mode) {
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
