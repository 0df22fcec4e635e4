#pragma once
// The parts of a tunnel socket message that both I/O paths (readiness: recvmmsg/sendmmsg; uring:
// recvmsg/sendmsg operations) build and read: the address and buffer, the UDP_SEGMENT cmsg of a
// send with the kernel's limits for it, the GRO and drop-count cmsgs of a receive.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>  // not <linux/udp.h>: that one redefines udphdr
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tunnel/packet_batch.hpp"

namespace nm {

// The kernel's limits for one UDP_SEGMENT send: UDP_MAX_SEGMENTS (64 before 6.x raised it to
// 128; we stay with the older value) and one IPv4 datagram's worth of payload.
inline constexpr size_t kMaxGsoSegments = 64;
inline constexpr size_t kMaxUdpPayload = 65535 - 20 - 8;

// Room for one message's cmsgs (UDP_SEGMENT out; UDP_GRO and SO_RXQ_OVFL in).
struct alignas(cmsghdr) UdpControl {
    uint8_t bytes[64];
};

inline sockaddr_in to_sockaddr(UdpEndpoint e) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = e.address.network_order();
    a.sin_port = htons(e.port);
    return a;
}

inline UdpEndpoint from_sockaddr(const sockaddr_in& a) {
    return {Ipv4::from_network(a.sin_addr.s_addr), ntohs(a.sin_port)};
}

// Segments of `segment` bytes one send may carry: as many as one UDP_SEGMENT send takes with
// GSO, one without.
inline size_t segments_per_send(size_t segment, bool gso) {
    return gso ? std::max<size_t>(1, std::min(kMaxGsoSegments, kMaxUdpPayload / segment)) : 1;
}

// How many datagrams `length` bytes are on the wire when cut into `segment`-byte ones (0: one).
inline size_t datagrams_in(size_t length, size_t segment) {
    return segment ? (length + segment - 1) / segment : 1;
}

// A message of one buffer to or from `address`, without cmsgs.
inline void address_message(msghdr& h, sockaddr_in& address, iovec& iov) {
    h = {};
    h.msg_name = &address;
    h.msg_namelen = sizeof(sockaddr_in);
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
}

// A receive into `iov` with room for the cmsgs read_receive_cmsg reads.
inline void receive_message(msghdr& h, sockaddr_in& address, iovec& iov, UdpControl& control) {
    address_message(h, address, iov);
    h.msg_control = control.bytes;
    h.msg_controllen = sizeof control.bytes;
}

// Asks the kernel to send the `length` bytes of `h` as `segment`-byte datagrams (UDP_SEGMENT);
// returns how many datagrams that makes.
inline uint32_t request_segments(msghdr& h, UdpControl& control, size_t length, size_t segment) {
    h.msg_control = control.bytes;
    h.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
    cmsghdr* c = CMSG_FIRSTHDR(&h);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    const auto size = static_cast<uint16_t>(segment);
    std::memcpy(CMSG_DATA(c), &size, sizeof size);
    return static_cast<uint32_t>(datagrams_in(length, segment));
}

// One cmsg of a receive of `length` bytes: a GRO segment size smaller than it goes to `segment`,
// the socket's count of dropped datagrams to `socket_drops`; others are passed over.
inline void read_receive_cmsg(const cmsghdr* c, size_t length, uint16_t& segment,
                              uint32_t& socket_drops) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
        int size = 0;
        std::memcpy(&size, CMSG_DATA(c), sizeof size);
        if (size > 0 && static_cast<size_t>(size) < length) segment = static_cast<uint16_t>(size);
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
        std::memcpy(&socket_drops, CMSG_DATA(c), sizeof(uint32_t));
    }
}

}  // namespace nm
