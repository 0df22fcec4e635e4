#pragma once
// One shard's tunnel socket: every shard binds the tunnel port with SO_REUSEPORT, so the kernel
// spreads peers over shards. Batches both ways: recvmmsg with UDP_GRO (many datagrams of a peer
// in one buffer), sendmmsg with UDP_SEGMENT (one buffer of equal packets as many datagrams).
#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/error.hpp"
#include "core/shard.hpp"
#include "tunnel/packet_batch.hpp"
#include "tunnel/packet_io.hpp"

namespace nm {

class Uring;
class UringUdpIo;

struct UdpTunnelOptions {
    UdpEndpoint bind{};             // address 0 = every address; port 0 = any (tests)
    int receive_buffer = 32 << 20;  // bytes; 4 MiB overflowed with 4 TCP streams
    int send_buffer = 32 << 20;
    bool gro = true;  // UDP_GRO on receive
    bool gso = true;  // UDP_SEGMENT on send; false sends each segment as its own datagram
};

// The kernel's UDP counters of the calling thread's network namespace (/proc/net/snmp).
struct UdpKernelCounters {
    uint64_t in_datagrams = 0, no_ports = 0, in_errors = 0, out_datagrams = 0;
    uint64_t rcvbuf_errors = 0, sndbuf_errors = 0, in_csum_errors = 0;
};
Result<UdpKernelCounters> read_udp_kernel_counters();

class UdpTunnel final : public WireIo {
  public:
    // Socket, SO_REUSEPORT, buffers (forced past rmem_max when we may), GRO, bind.
    static Result<UdpTunnel> open(boost::asio::io_context& context,
                                  const UdpTunnelOptions& options);

    UdpTunnel(UdpTunnel&&) noexcept;
    UdpTunnel& operator=(UdpTunnel&&) noexcept;
    ~UdpTunnel() override;

    UdpEndpoint local() const { return local_; }
    int receive_buffer() const { return receive_buffer_; }  // as the kernel reports it
    int send_buffer() const { return send_buffer_; }
    bool gro() const { return options_.gro; }
    bool gso() const { return options_.gso; }

    // A send and a receive may be under way at the same time (each direction has its own message
    // headers); more calls of one direction wait their turn, in order. Do not move the tunnel
    // while a call is under way.

    // Clears `batch`, waits until datagrams arrive and receives up to batch.capacity() buffers in
    // one call. Packets: bytes, peer = source, segment_size = GRO segment size (0: one datagram).
    // Retries transient failures (core/retry.hpp); fails on permanent ones and once closed.
    awaitable<Result<size_t>> receive_batch(PacketBatch& batch) override;

    // Sends every packet to its peer in as few sendmmsg calls as the kernel allows (a buffer
    // with segment_size is cut into UDP_SEGMENT sends of at most 64 segments and 64 KiB). Waits
    // when the socket buffer is full; a message the kernel refuses is counted and skipped.
    // Returns the number of datagrams sent.
    awaitable<Result<size_t>> send_batch(std::span<const Packet> packets) override;

    // IP_MTU of a socket connected to the peer (the tunnel socket itself is not connected).
    unsigned path_mtu(Ipv4 peer) override;

    // Makes the kernel give each datagram to the socket of the shard that owns its inner flow
    // (owner_shard), for a group of `shards` sockets opened in shard order: no hand-off
    // between shards for tunnel traffic. Call on any one socket once all have been bound.
    Result<void> steer_to_owners(unsigned shards);

    // From now on receive_batch and send_batch go through the shard's ring (--io uring), at
    // most `batch` buffers per receive. multishot: receive into provided buffers with one
    // multishot recvmsg; by default a recvmsg chain per batch, which measured faster (the
    // multishot wakes the loop for the first datagram, so batches shrink and merge less;
    // docs/benchmarks.md). Defined in udp_tunnel_uring.cpp.
    void use_ring(const std::shared_ptr<Uring>& ring, size_t batch, bool multishot = false);
    bool uses_ring() const { return uring_ != nullptr; }
    // On the ring with a multishot receive into provided buffers (the kernel took them).
    bool receives_multishot() const;

    const UdpTunnelCounters& counters() const override { return counters_; }
    void close() override;

  private:
    struct Directions;
    UdpTunnel(boost::asio::io_context& context, int fd, const UdpTunnelOptions& options);

    boost::asio::posix::stream_descriptor descriptor_;
    // A UDP socket made with the tunnel's (same namespace and address), connected to a peer only
    // to read the path MTU toward it; it sends nothing.
    boost::asio::posix::stream_descriptor probe_;
    UdpTunnelOptions options_;
    UdpEndpoint local_{};
    int receive_buffer_ = 0, send_buffer_ = 0;
    UdpTunnelCounters counters_;
    // Message headers and turns of each direction; on the heap so a moved tunnel keeps them.
    std::unique_ptr<Directions> directions_;
    std::unique_ptr<UringUdpIo> uring_;  // set in uring mode; destroyed (drained) first
};

}  // namespace nm
