#pragma once
// TUN queue I/O on the shard's ring (--io uring): a batch of reads goes in one io_uring_enter as
// a hard-linked chain (the first waits for a packet, the rest take what is queued behind it
// without waiting, in order), and a batch of writes likewise in one io_uring_enter.
// Packets have the same layout as TunQueue's readiness path: vnet header split off, IP bytes.
#include <sys/uio.h>

#include <memory>
#include <span>
#include <vector>

#include "core/error.hpp"
#include "tunnel/packet_batch.hpp"
#include "tunnel/uring.hpp"

namespace nm {

struct TunQueueCounters;

class UringTunIo {
  public:
    // Borrows fd (the TunQueue keeps it); `batch`: the most packets read or written per call.
    UringTunIo(const std::shared_ptr<Uring>& ring, int fd, bool vnet_hdr, size_t batch);
    ~UringTunIo();

    awaitable<Result<size_t>> read_batch(PacketBatch& batch, TunQueueCounters& counters);
    size_t write_batch(std::span<const Packet> packets, TunQueueCounters& counters);
    // Cancels a pending read; later calls fail.
    void close();

  private:
    // The SQE's fd and flags for the queue: its registered index when it has one.

    std::shared_ptr<Uring> ring_;
    int fd_;
    int file_index_;
    bool vnet_hdr_;
    bool closed_ = false;
    size_t chain_;  // reads per chain: grows to the batch while reads fill it, shrinks when not
    UringBatch reads_;
    UringBatch writes_;
    std::vector<iovec> write_iovs_;
    std::vector<uint8_t> write_headers_;
};

}  // namespace nm
