#pragma once
// Tunnel socket I/O on the shard's ring (--io uring). Receives: a hard-linked chain of recvmsg
// (the first waits for a datagram, the rest take what is queued without waiting), one
// io_uring_enter for the batch, GRO segment sizes from the cmsgs as the readiness path reads them.
// Sends: a hard-linked chain of sendmsg with UDP_SEGMENT cmsgs, in order, each waiting for room
// in the socket buffer; a message the kernel refuses is counted and the chain goes on.
#include <netinet/in.h>
#include <sys/socket.h>

#include <memory>
#include <span>
#include <vector>

#include "core/error.hpp"
#include "tunnel/packet_batch.hpp"
#include "tunnel/uring.hpp"

namespace nm {

struct UdpTunnelCounters;

class UringUdpIo {
  public:
    // Borrows fd (the UdpTunnel keeps it). `batch`: buffers per receive.
    UringUdpIo(std::shared_ptr<Uring> ring, int fd, bool gso, size_t batch);
    ~UringUdpIo();

    awaitable<Result<size_t>> receive_batch(PacketBatch& batch, UdpTunnelCounters& counters);
    awaitable<Result<size_t>> send_batch(std::span<const Packet> packets,
                                         UdpTunnelCounters& counters);
    // Cancels pending receives and sends; later calls fail.
    void close();

  private:
    struct alignas(cmsghdr) Control {
        uint8_t bytes[64];
    };
    struct Messages {
        explicit Messages(size_t n)
            : headers(n), iovs(n), addresses(n), controls(n), datagrams(n) {}
        std::vector<msghdr> headers;
        std::vector<iovec> iovs;
        std::vector<sockaddr_in> addresses;
        std::vector<Control> controls;
        std::vector<uint32_t> datagrams;
    };
    void target(io_uring_sqe* sqe) const;

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
};

}  // namespace nm
