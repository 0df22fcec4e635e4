#pragma once
// Builds IPv4 packets with correct checksums for the packet-core tests.
#include <cstdint>
#include <vector>

#include "core/address.hpp"
#include "core/packet.hpp"

namespace nm::test {

struct PacketSpec {
    uint8_t protocol = ipproto::tcp;
    Ipv4 source{0xac130102};       // 172.19.1.2
    Ipv4 destination{0xac1e0004};  // 172.30.0.4
    uint16_t source_port = 40000;
    uint16_t destination_port = 80;
    uint8_t tcp_flags = 0x02;  // SYN
    uint8_t ttl = 64;
    uint8_t icmp_type = 8;        // echo request
    uint16_t fragment_field = 0;  // flags + offset (0x2000 = more fragments)
    size_t payload = 16;
    bool udp_zero_checksum = false;
};

// The IPv6 counterpart. `extensions` are next-header values placed before the upper layer
// (hop-by-hop, routing, destination options: 8 bytes each; fragment: the 8-byte fragment
// header with `fragment_offset` (in 8-byte units), `more_fragments` and `fragment_id`).
struct PacketSpec6 {
    uint8_t protocol = ipproto::tcp;
    const char* source = "fc00::102";
    const char* destination = "fdff:2000::10";
    uint16_t source_port = 40000;
    uint16_t destination_port = 80;
    uint8_t tcp_flags = 0x02;  // SYN
    uint8_t hop_limit = 64;
    uint8_t icmp_type = 128;  // echo request
    std::vector<uint8_t> extensions = {};
    uint16_t fragment_offset = 0;
    bool more_fragments = false;
    uint32_t fragment_id = 0x1234;
    size_t payload = 16;
};

Ipv4 ip(const char* text);
Ipv6 ip6(const char* text);
std::vector<uint8_t> build6(const PacketSpec6& spec);
std::vector<uint8_t> build(const PacketSpec& spec);
// Parses, or fails the current test.
PacketView view(std::vector<uint8_t>& bytes);

}  // namespace nm::test
