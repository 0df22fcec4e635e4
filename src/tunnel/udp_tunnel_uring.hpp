#pragma once
// Tunnel socket I/O on the shard's ring (--io uring). Receives: one multishot recvmsg into a
// ring of provided buffers, armed once and completing datagram after datagram without any
// syscall; a batch is the datagrams that arrived, and its buffers go back to the kernel when the
// next batch is asked for. Where the kernel has no provided buffers: a hard-linked chain of
// recvmsg per batch (the first waits, the rest take what is queued), one io_uring_enter each.
// GRO segment sizes come from the cmsgs as the readiness path reads them.
// Sends: a hard-linked chain of sendmsg with UDP_SEGMENT cmsgs, in order, each waiting for room
// in the socket buffer; a message the kernel refuses is counted and the chain goes on.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdlib>
#include <memory>
#include <span>
#include <vector>

#include "core/error.hpp"
#include "tunnel/packet_batch.hpp"
#include "tunnel/udp_messages.hpp"
#include "tunnel/uring.hpp"

namespace nm {

struct UdpTunnelCounters;

class UringUdpIo {
  public:
    // Borrows fd (the UdpTunnel keeps it). `batch`: buffers per receive. multishot: false keeps
    // to the recvmsg chains (also the fallback when provided buffers are refused).
    UringUdpIo(const std::shared_ptr<Uring>& ring, int fd, bool gso, size_t batch, bool multishot);
    ~UringUdpIo();

    awaitable<Result<size_t>> receive_batch(PacketBatch& batch, UdpTunnelCounters& counters);
    awaitable<Result<size_t>> send_batch(std::span<const Packet> packets,
                                         UdpTunnelCounters& counters);
    bool multishot() const { return group_ >= 0; }
    // Cancels pending receives and sends; later calls fail.
    void close();

  private:
    struct Messages {
        explicit Messages(size_t n)
            : headers(n), iovs(n), addresses(n), controls(n), datagrams(n) {}
        std::vector<msghdr> headers;
        std::vector<iovec> iovs;
        std::vector<sockaddr_in> addresses;
        std::vector<UdpControl> controls;
        std::vector<uint32_t> datagrams;
    };
    bool setup_provided_buffers(size_t count);
    // Hands the buffers of lent_ back to the kernel's provided-buffer ring.
    void give_back_lent();
    awaitable<Result<size_t>> receive_multishot(PacketBatch& batch, UdpTunnelCounters& counters);
    awaitable<Result<size_t>> receive_chain(PacketBatch& batch, UdpTunnelCounters& counters);

    std::shared_ptr<Uring> ring_;
    int fd_;
    int file_index_;
    bool gso_;
    bool closed_ = false;
    size_t chain_;
    UringBatch receives_;
    UringBatch sends_;
    Messages in_;
    Messages out_;
    // Multishot receive: the provided buffers (header, address, cmsgs, then the datagram) and
    // the ring that hands them to the kernel.
    struct BufferRingDeleter {
        void operator()(io_uring_buf_ring* r) const { std::free(r); }
    };
    std::unique_ptr<io_uring_buf_ring, BufferRingDeleter> buffer_ring_;
    std::unique_ptr<uint8_t[]> buffers_;
    unsigned buffer_count_ = 0;
    int group_ = -1;
    msghdr shot_header_{};        // the layout every shot's buffer follows
    UringBatch multishot_;        // one operation, many completions
    std::vector<uint16_t> lent_;  // buffers whose datagrams the last batch returned
};

}  // namespace nm
