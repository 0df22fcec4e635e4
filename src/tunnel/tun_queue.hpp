#pragma once
// One queue of a multi-queue TUN on one shard: batch reads driven by the shard's io_context
// (readiness waits), and writes that never block (a full queue drops and counts).
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>

#include "core/error.hpp"
#include "core/shard.hpp"
#include "tunnel/packet_batch.hpp"
#include "tunnel/packet_io.hpp"

namespace nm {

class Uring;
class UringTunIo;

class TunQueue final : public TunIo {
  public:
    // Takes ownership of `fd` (a non-blocking TUN queue).
    TunQueue(boost::asio::io_context& context, int fd, bool vnet_hdr);
    TunQueue(TunQueue&&) noexcept;
    TunQueue& operator=(TunQueue&&) noexcept;
    ~TunQueue() override;

    // From now on read_batch and write_batch go through the shard's ring (--io uring), at most
    // `batch` packets per call. Defined in tun_queue_uring.cpp.
    void use_ring(const std::shared_ptr<Uring>& ring, size_t batch);
    bool uses_ring() const { return uring_ != nullptr; }

    // Clears `batch`, waits until the queue is readable and reads until it is empty or the batch
    // full. Packets: bytes = the IP packet, vnet = its header (zero without vnet_hdr).
    // Retries transient failures (core/retry.hpp) after their pause. Fails (unavailable) once
    // the queue is closed, (system) on a permanent failure such as the device going away.
    awaitable<Result<size_t>> read_batch(PacketBatch& batch) override;

    // Writes each packet, its vnet header first when the device has them. Returns how many the
    // kernel took; the rest are counted as dropped or errors.
    size_t write_batch(std::span<const Packet> packets) override;
    bool write(const Packet& packet);

    bool vnet_hdr() const override { return vnet_hdr_; }
    const TunQueueCounters& counters() const override { return counters_; }
    // Cancels a pending read_batch and closes the queue.
    void close() override;

  private:
    boost::asio::posix::stream_descriptor descriptor_;
    bool vnet_hdr_;
    TunQueueCounters counters_;
    std::unique_ptr<UringTunIo> uring_;  // set in uring mode; destroyed (drained) first
};

}  // namespace nm
