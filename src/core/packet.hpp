#pragma once
// A validated view over one IP packet in a caller's buffer: parse once, read fields, rewrite
// addresses in place with incremental checksum updates. No allocation, no copy, and nothing is
// read outside the span (every offset is checked by parse()).
#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <tl/expected.hpp>

#include "core/address.hpp"
#include "core/checksum.hpp"

namespace nm {

namespace ipproto {
inline constexpr uint8_t icmp = 1;
inline constexpr uint8_t tcp = 6;
inline constexpr uint8_t udp = 17;
inline constexpr uint8_t icmpv6 = 58;
// IPv6 extension headers parse() walks past.
inline constexpr uint8_t hop_by_hop = 0;
inline constexpr uint8_t routing = 43;
inline constexpr uint8_t fragment = 44;
inline constexpr uint8_t destination_options = 60;
}  // namespace ipproto

// Why parse() refused a buffer.
enum class ParseError : uint8_t {
    empty,
    bad_version,        // neither 4 nor 6
    truncated_header,   // shorter than the (fixed) IP header
    bad_header_length,  // IPv4 IHL < 5 or past the buffer
    bad_total_length,   // IPv4 total length < IHL or > buffer; IPv6 payload length > buffer
    truncated_l4,       // TCP/UDP/ICMP header (in an unfragmented or first fragment) cut short
    bad_tcp_offset,     // TCP data offset < 5 or past the packet
    bad_extension,      // an IPv6 extension header cut short, or too many of them
};
std::string_view to_string(ParseError error);

enum class Fragment : uint8_t {
    none,       // a whole datagram
    first,      // offset 0, more fragments follow: carries the L4 header
    non_first,  // offset > 0: no L4 header, so no ports
};

// How the TCP/UDP checksum field is to be treated by a rewrite.
enum class L4Csum : uint8_t {
    full,     // a complete checksum (the usual case)
    partial,  // virtio NEEDS_CSUM / CHECKSUM_PARTIAL: the field holds the pseudo-header sum
};

class PacketView {
  public:
    // Validates the IP header(s) and, where present, the TCP/UDP/ICMP header. The view covers
    // exactly the packet (an IPv4 buffer longer than its total length is trimmed).
    static tl::expected<PacketView, ParseError> parse(std::span<uint8_t> buffer);

    std::span<uint8_t> bytes() const { return bytes_; }
    // The same parsed packet after its bytes were copied to `copy` (which starts where bytes()
    // started): what was read from the headers need not be parsed again.
    PacketView moved_to(std::span<uint8_t> copy) const {
        PacketView view = *this;
        view.bytes_ = copy.first(bytes_.size());
        return view;
    }
    uint8_t version() const { return bytes_[0] >> 4; }
    bool is_ipv4() const { return version() == 4; }
    bool is_ipv6() const { return version() == 6; }
    // IPv4 protocol, or IPv6 upper-layer protocol (the next header after the extension headers).
    uint8_t protocol() const { return protocol_; }
    uint8_t ttl() const { return ttl_; }  // IPv6: hop limit
    size_t l4_offset() const { return l4_offset_; }
    Fragment fragment() const { return fragment_; }
    // The fragment's identification (IPv4 16 bits, IPv6 32 bits); 0 for a whole datagram.
    uint32_t fragment_id() const { return fragment_id_; }

    // IPv4 only (0.0.0.0 for IPv6).
    Ipv4 source() const { return is_ipv4() ? Ipv4{csum::load_be32(&bytes_[12])} : Ipv4{}; }
    Ipv4 destination() const { return is_ipv4() ? Ipv4{csum::load_be32(&bytes_[16])} : Ipv4{}; }
    // IPv6 only: the 16 address bytes in network order.
    std::span<const uint8_t, 16> source6() const { return bytes_.subspan<8, 16>(); }
    std::span<const uint8_t, 16> destination6() const { return bytes_.subspan<24, 16>(); }
    Ipv6 source_v6() const { return load_ipv6(8); }
    Ipv6 destination_v6() const { return load_ipv6(24); }

    // TCP and UDP ports; for ICMP echo request/reply the identifier is both ports, so a reply
    // matches its request's flow. 0 when the packet has none (non-first fragment, other ICMP).
    bool has_ports() const { return has_ports_; }
    uint16_t source_port() const { return source_port_; }
    uint16_t destination_port() const { return destination_port_; }
    // TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10); 0 if not TCP.
    uint8_t tcp_flags() const { return tcp_flags_; }
    bool tcp_fin_or_rst() const { return (tcp_flags_ & 0x05) != 0; }

    // IPv4 only: replace the address and update the header checksum and the TCP/UDP checksum
    // incrementally (a UDP checksum of 0, "none", stays 0; ICMP has no pseudo-header; a
    // non-first fragment carries no L4 checksum). With L4Csum::partial the TCP/UDP field is a
    // partial (pseudo-header) sum and is updated as such, even for UDP.
    void rewrite_source(Ipv4 address, L4Csum mode = L4Csum::full);
    void rewrite_destination(Ipv4 address, L4Csum mode = L4Csum::full);
    // Both at once, with one checksum update each for the header and the TCP/UDP field.
    void rewrite_addresses(Ipv4 source, Ipv4 destination, L4Csum mode = L4Csum::full);

    // IPv6 only: the same with 128-bit addresses. IPv6 has no header checksum; the TCP, UDP and
    // ICMPv6 checksums cover the addresses through the pseudo-header and are updated.
    void rewrite_source(const Ipv6& address, L4Csum mode = L4Csum::full);
    void rewrite_destination(const Ipv6& address, L4Csum mode = L4Csum::full);
    void rewrite_addresses(const Ipv6& source, const Ipv6& destination, L4Csum mode = L4Csum::full);

    // Offset of the TCP/UDP (or ICMPv6) checksum field, or 0 if the packet has none to maintain.
    size_t l4_checksum_offset() const { return l4_csum_offset_; }

  private:
    Ipv6 load_ipv6(size_t offset) const {
        Ipv6 a;
        std::memcpy(a.bytes.data(), bytes_.data() + offset, 16);
        return a;
    }
    void rewrite_address(size_t offset, Ipv4 address, L4Csum mode);
    void update_checksums(uint64_t delta, L4Csum mode);
    void update_l4_checksum(uint64_t delta, L4Csum mode);
    void rewrite_address6(size_t offset, const Ipv6& address, L4Csum mode);

    std::span<uint8_t> bytes_;
    uint16_t l4_offset_ = 0;
    uint16_t l4_csum_offset_ = 0;
    uint16_t source_port_ = 0, destination_port_ = 0;
    uint32_t fragment_id_ = 0;
    uint8_t protocol_ = 0, ttl_ = 0, tcp_flags_ = 0;
    Fragment fragment_ = Fragment::none;
    bool has_ports_ = false;
};

// Full recomputation, for tests and for packets built from scratch: sets the IPv4 header
// checksum and the TCP/UDP (IPv6: also ICMPv6) checksum (L4Csum::partial: the pseudo-header
// sum) of a parsed packet. Non-first fragments get only the header checksum; a first fragment's
// L4 checksum cannot be computed from one fragment and is left alone.
void fill_checksums(PacketView& packet, L4Csum mode = L4Csum::full);
// Whether the IPv4 header checksum verifies.
bool ipv4_header_checksum_ok(const PacketView& packet);

}  // namespace nm
