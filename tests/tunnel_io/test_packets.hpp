#pragma once
// Packets for the tunnel I/O tests, built and checked byte by byte with a checksum written
// independently of the one under test (big-endian words, RFC 1071 as printed).
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "tunnel/packet_batch.hpp"
#include "tunnel/vnet_header.hpp"

namespace nm::test {

constexpr uint8_t FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10, URG = 0x20,
                  ECE = 0x40, CWR = 0x80;

struct Flow {
    bool v6 = false;
    std::array<uint8_t, 16> src{10, 0, 0, 1}, dst{10, 0, 0, 2};  // first 4 bytes for IPv4
    uint16_t sport = 40000, dport = 5201;
};

struct TcpSpec {
    Flow flow;
    uint32_t seq = 1000, ack = 7777;
    uint8_t flags = ACK;
    uint16_t window = 512, id = 100;
    uint8_t ttl = 64, tos = 0;
    std::vector<uint8_t> options;  // multiple of 4
    std::vector<uint8_t> payload;
};

std::vector<uint8_t> pattern(size_t n, uint32_t seed = 1);
// NOP NOP timestamp: the options Linux puts on every data segment.
std::vector<uint8_t> timestamp_option(uint32_t value = 123456, uint32_t echo = 654321);

// A TCP packet with correct checksums.
std::vector<uint8_t> tcp_packet(const TcpSpec& spec);
// A UDP packet with correct checksums.
std::vector<uint8_t> udp_packet(const Flow& flow, std::span<const uint8_t> payload,
                                uint16_t id = 1);

// `packet` as a TUN with offloads hands it over: TCP/UDP checksum field holding the pseudo-header
// sum, and the matching virtio header (gso_size 0: not GSO).
VirtioNetHdr make_partial(std::vector<uint8_t>& packet, uint16_t gso_size);

uint16_t reference_sum(std::span<const uint8_t> bytes, uint32_t start = 0);
// IPv4 header checksum (if IPv4) and the full TCP/UDP checksum verify.
bool checksums_ok(std::span<const uint8_t> packet);

// The datagrams a UDP_SEGMENT send of `p` puts on the wire (a split() result), in order.
std::vector<std::span<const uint8_t>> segments_of(const Packet& p);

struct Parsed {
    bool v6 = false;
    size_t l4 = 0, headers = 0;
    uint8_t protocol = 0;
    uint16_t ip_length = 0, id = 0;
    uint32_t seq = 0;
    uint8_t flags = 0;
    std::span<const uint8_t> payload;
};
Parsed parse(std::span<const uint8_t> packet);

}  // namespace nm::test
