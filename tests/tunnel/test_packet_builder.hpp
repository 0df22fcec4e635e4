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

Ipv4 ip(const char* text);
std::vector<uint8_t> build(const PacketSpec& spec);
// Parses, or fails the current test.
PacketView view(std::vector<uint8_t>& bytes);

}  // namespace nm::test
