#pragma once
// An ICMPv6 error (destination unreachable, packet too big, time exceeded, parameter problem)
// quotes the start of the packet that caused it (RFC 4443 2.4). For a translated flow the quote
// holds the addresses as translated, so carrying the error back means rewriting the quote too.
#include <cstdint>
#include <optional>
#include <span>

#include "core/address.hpp"
#include "core/packet.hpp"

namespace nm {

class Icmp6Error {
  public:
    // The quote of an ICMPv6 error message in `packet` when it is an IPv6 TCP or UDP packet with
    // both ports (no extension headers); none for anything else.
    static std::optional<Icmp6Error> of(const PacketView& packet);

    uint8_t type() const { return bytes_[icmp_]; }
    Ipv6 source() const { return load(quote_ + 8); }
    Ipv6 destination() const { return load(quote_ + 24); }
    uint8_t protocol() const { return bytes_[quote_ + 6]; }
    uint16_t source_port() const;
    uint16_t destination_port() const;

    // Replaces the quoted addresses, keeping the ICMPv6 checksum right (the quote is part of the
    // message it covers). The quote's own TCP/UDP checksum is left as it was quoted.
    void rewrite_quote(const Ipv6& source, const Ipv6& destination);

  private:
    Icmp6Error(std::span<uint8_t> bytes, size_t icmp)
        : bytes_(bytes), icmp_(icmp), quote_(icmp + 8) {}
    Ipv6 load(size_t at) const;

    std::span<uint8_t> bytes_;
    size_t icmp_, quote_;
};

}  // namespace nm
