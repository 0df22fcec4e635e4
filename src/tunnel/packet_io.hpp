#pragma once
// The seam between a shard's Forwarder and its devices: one interface per side, called once per
// batch (never per packet). TunQueue and UdpTunnel implement them on the kernel (readiness or
// io_uring); tests put in-memory doubles behind them.
#include <cstdint>
#include <span>

#include "core/error.hpp"
#include "core/shard.hpp"
#include "tunnel/packet_batch.hpp"

namespace nm {

struct TunQueueCounters {
    uint64_t read_batches = 0, read_packets = 0, read_bytes = 0;
    uint64_t read_errors = 0;   // reads the kernel failed, or shorter than the virtio header
    uint64_t read_retries = 0;  // failed reads tried again (transient: ENOBUFS, ENOMEM...)
    uint64_t write_packets = 0, write_bytes = 0;
    uint64_t write_dropped = 0;  // the queue was full (EAGAIN/ENOBUFS)
    uint64_t write_errors = 0;   // the kernel refused the packet (EINVAL for a bad GSO header...)
    int last_write_errno = 0;
};

// The TUN side: IP packets from and to the node's namespaces.
class TunIo {
  public:
    virtual ~TunIo() = default;
    // Clears `batch`, waits until packets are there and reads up to batch.capacity() of them.
    // Packets: bytes = the IP packet, vnet = its offload header (zero without vnet_hdr()).
    // Fails once closed or on a permanent failure.
    virtual awaitable<Result<size_t>> read_batch(PacketBatch& batch) = 0;
    // Writes each packet without waiting; returns how many were taken (the rest are counted).
    virtual size_t write_batch(std::span<const Packet> packets) = 0;
    // Whether packets carry virtio offload headers (super-segments, partial checksums).
    virtual bool vnet_hdr() const = 0;
    virtual const TunQueueCounters& counters() const = 0;
    // Ends a pending read_batch; later calls fail.
    virtual void close() = 0;
};

struct UdpTunnelCounters {
    uint64_t receive_calls = 0, received_buffers = 0, received_datagrams = 0, received_bytes = 0;
    uint64_t receive_truncated = 0;
    uint64_t receive_retries = 0;  // failed receives tried again (transient: ENOMEM, ENOBUFS...)
    uint64_t send_calls = 0, sent_datagrams = 0, sent_bytes = 0;
    uint64_t send_waits = 0;    // the socket buffer was full; we waited for room
    uint64_t send_errors = 0;   // messages the kernel refused (unreachable, too big...)
    uint64_t send_too_big = 0;  // of those, refused as larger than the path's MTU (EMSGSIZE)
    int last_send_errno = 0;
    uint32_t socket_drops = 0;  // datagrams this socket dropped for a full buffer (SO_RXQ_OVFL)
};

// The wire side: tunnel datagrams from and to other nodes. A send and a receive may be under
// way at the same time; more calls of one direction wait their turn, in order.
class WireIo {
  public:
    virtual ~WireIo() = default;
    // Clears `batch`, waits until datagrams arrive and receives up to batch.capacity() buffers.
    // Packets: bytes, peer = source, segment_size = GRO segment size (0: one datagram).
    virtual awaitable<Result<size_t>> receive_batch(PacketBatch& batch) = 0;
    // Sends every packet to its peer (segment_size > 0: as datagrams of that size); may wait for
    // room. Returns the number of datagrams sent.
    virtual awaitable<Result<size_t>> send_batch(std::span<const Packet> packets) = 0;
    virtual const UdpTunnelCounters& counters() const = 0;
    // The MTU of the underlay path toward `peer` as the kernel knows it (the route's, lowered by
    // ICMP fragmentation needed it received); 0 when unknown. A few system calls: not per packet.
    virtual unsigned path_mtu(Ipv4 /*peer*/) { return 0; }
    // Ends a pending receive_batch; later calls fail.
    virtual void close() = 0;
};

}  // namespace nm
