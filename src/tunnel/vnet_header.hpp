#pragma once
// The virtio_net_hdr that an IFF_VNET_HDR TUN puts before every packet (and expects before every
// write): it says whether the packet is a GSO super-segment and whether its checksum is partial.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace nm {

// The legacy 10-byte header, in host byte order: the kernel uses native endianness for it unless
// TUNSETVNETLE is set, which we never do.
struct VirtioNetHdr {
    uint8_t flags = 0;
    uint8_t gso_type = 0;
    uint16_t hdr_len = 0;      // bytes of headers (a hint)
    uint16_t gso_size = 0;     // payload bytes per segment
    uint16_t csum_start = 0;   // where the partial checksum's coverage starts (from the IP header)
    uint16_t csum_offset = 0;  // where, from csum_start, the checksum field is

    bool needs_csum() const { return (flags & kNeedsCsum) != 0; }
    // The GSO type without the ECN bit.
    uint8_t gso() const { return gso_type & static_cast<uint8_t>(~kGsoEcn); }

    static constexpr uint8_t kNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
    static constexpr uint8_t kDataValid = 2;  // VIRTIO_NET_HDR_F_DATA_VALID
    static constexpr uint8_t kGsoNone = 0;
    static constexpr uint8_t kGsoTcpV4 = 1;
    static constexpr uint8_t kGsoUdp = 3;  // UFO: fragments, not produced by modern kernels
    static constexpr uint8_t kGsoTcpV6 = 4;
    static constexpr uint8_t kGsoUdpL4 = 5;  // USO; missing from Debian 12's headers
    static constexpr uint8_t kGsoEcn = 0x80;

    friend bool operator==(const VirtioNetHdr&, const VirtioNetHdr&) = default;
};

inline constexpr size_t kVnetHdrSize = 10;

inline VirtioNetHdr load_vnet_hdr(const uint8_t* p) {
    VirtioNetHdr h;
    h.flags = p[0];
    h.gso_type = p[1];
    std::memcpy(&h.hdr_len, p + 2, 2);
    std::memcpy(&h.gso_size, p + 4, 2);
    std::memcpy(&h.csum_start, p + 6, 2);
    std::memcpy(&h.csum_offset, p + 8, 2);
    return h;
}

inline void store_vnet_hdr(const VirtioNetHdr& h, uint8_t* p) {
    p[0] = h.flags;
    p[1] = h.gso_type;
    std::memcpy(p + 2, &h.hdr_len, 2);
    std::memcpy(p + 4, &h.gso_size, 2);
    std::memcpy(p + 6, &h.csum_start, 2);
    std::memcpy(p + 8, &h.csum_offset, 2);
}

}  // namespace nm
