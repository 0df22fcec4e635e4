#pragma once
// Segmentation offloads done in userspace, so a tunnel datagram always carries one ordinary IP
// packet while the TUN side moves 64 KiB units:
//  - split: a TUN read (maybe a TSO/USO super-segment with a partial checksum) becomes complete
//    IP packets laid end to end at equal stride, ready for one UDP_SEGMENT send;
//  - SegmentMerger: received packets of one TCP flow with contiguous sequence numbers become one
//    super-segment with a virtio_net_hdr, written to the TUN in one write.
// Pure functions over memory: no I/O. IPv4 and IPv6 (without extension headers for merging).
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/error.hpp"
#include "tunnel/packet_batch.hpp"

namespace nm {

// Turns one TUN read (`from_tun.bytes` = IP packet, `from_tun.vnet` its offload state) into
// packets for the wire:
//  - not GSO: the packet itself, its checksum completed in place when NEEDS_CSUM is set;
//  - GSO (TCPV4, TCPV6, UDP_L4): segments of at most gso_size payload (and at most `max_packet`
//    bytes each) written into `out` back to back; every one a complete packet (IP length, id and
//    header checksum; TCP sequence number, FIN/PSH on the last only, CWR on the first only; full
//    TCP/UDP checksum). Equal size but the last, so the result's segment_size lets UDP GSO send
//    them at once.
// The result's `bytes` point into `out` or into from_tun.bytes; vnet is cleared, peer is copied.
// Errors: invalid_argument for a malformed packet or an unsupported GSO type, exhausted when
// `out` is smaller than split_size().
Result<Packet> split(const Packet& from_tun, std::span<uint8_t> out, size_t max_packet = 65535);

// split() into out's next buffer, appending the result to `out` (the packet itself when split
// leaves it in place, which needs no buffer). Fails with exhausted when a super-segment finds
// `out` full.
Result<void> split(const Packet& from_tun, PacketBatch& out, size_t max_packet = 65535);

// Bytes split() needs in `out` for this packet (0 for a packet it handles in place or rejects).
size_t split_size(const Packet& from_tun, size_t max_packet = 65535);

// Why packets of one flow were not merged into the unit before them. Flow changes are not rejects.
struct MergeCounters {
    uint64_t units = 0;            // super-segments produced
    uint64_t unit_segments = 0;    // packets that went into them
    uint64_t passed = 0;           // packets written as received
    uint64_t reject_sequence = 0;  // not contiguous with the unit (loss, reordering)
    uint64_t reject_header = 0;    // IP or TCP header fields differ (TOS/ECN, TTL, window, options)
    uint64_t reject_ip_id = 0;     // IPv4 id not the next one
    uint64_t reject_size = 0;      // larger than the unit's segment size, or the unit is full
    uint64_t reject_flags = 0;     // SYN/RST/URG/CWR, or no payload
    uint64_t reject_no_buffer = 0;  // out of output buffers
    uint64_t flows_evicted = 0;     // more open flows in one batch than the merger tracks
};

// Merges received inner packets into TUN writes. One per shard; keeps no state between calls.
class SegmentMerger {
  public:
    // Most flows merged at once within one call; more flows still pass, merged less.
    static constexpr size_t kMaxOpenFlows = 8;

    // enabled: the TUN accepts TSO super-segments (IFF_VNET_HDR with TUN_F_TSO4/6 on). When
    // false every packet passes through unchanged.
    explicit SegmentMerger(bool enabled) : enabled_(enabled) {}

    // Appends to `out`, in an order that keeps each flow's order, one Packet per TUN write:
    // merged units are built in out's buffers (vnet: GSO_TCPV4/6, NEEDS_CSUM with the
    // pseudo-header sum in the TCP checksum field, the Linux convention for a partial checksum);
    // every other packet points into `received` (which must outlive `out`'s use) with a zero vnet.
    // `received` are UDP receives, each one IP packet per datagram (GRO-coalesced or not).
    void merge(std::span<const Packet> received, PacketBatch& out);

    const MergeCounters& counters() const { return counters_; }

  private:
    // A flow's segments gathered so far. Built in an output buffer once a second segment joins.
    struct Unit {
        bool open = false;
        bool v6 = false;
        std::span<uint8_t> first;  // the first segment, where it was received
        size_t out_index = 0;      // its Packet in `out`, once built
        uint8_t* built = nullptr;  // the unit in an out buffer; null while it is one segment
        size_t length = 0;         // IP bytes so far
        size_t l4 = 0, headers = 0, segment = 0;
        uint32_t next_seq = 0;
        uint16_t next_id = 0;
        uint8_t end_flags = 0;  // FIN/PSH of the last segment
        uint32_t count = 0;
        uint64_t started = 0;  // for evicting the oldest
    };
    void add(std::span<uint8_t> packet, PacketBatch& out);
    void flush(Unit& unit, PacketBatch& out);
    void pass(std::span<uint8_t> packet, PacketBatch& out);

    bool enabled_;
    MergeCounters counters_;
    std::array<Unit, kMaxOpenFlows> units_{};
    uint64_t clock_ = 0;
};

}  // namespace nm
