#pragma once
// Packets move through a shard in batches whose bytes live in buffers taken once from a per-shard
// pool: reading, splitting, merging and writing never allocate per packet.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/address.hpp"
#include "tunnel/vnet_header.hpp"

namespace nm {

// Big enough for a virtio header plus the largest IP packet, and for one UDP GRO receive.
inline constexpr size_t kPacketBufferSize = 68 * 1024;
// Big enough for a 64 KiB super-segment cut into MSS-sized packets, each with its own headers.
inline constexpr size_t kSplitBufferSize = 128 * 1024;

class BufferPool;

// One pool buffer, returned to its pool when destroyed. Move-only. Must be destroyed on the shard
// that owns the pool (the pool has no lock).
class PooledBuffer {
  public:
    PooledBuffer() = default;
    PooledBuffer(PooledBuffer&& other) noexcept;
    PooledBuffer& operator=(PooledBuffer&& other) noexcept;
    PooledBuffer(const PooledBuffer&) = delete;
    PooledBuffer& operator=(const PooledBuffer&) = delete;
    ~PooledBuffer();

    explicit operator bool() const { return pool_ != nullptr; }
    std::span<uint8_t> data() const;

  private:
    friend class BufferPool;
    PooledBuffer(BufferPool* pool, uint32_t index) : pool_(pool), index_(index) {}
    BufferPool* pool_ = nullptr;
    uint32_t index_ = 0;
};

// A fixed number of equal buffers in one allocation, handed out and taken back on one shard.
class BufferPool {
  public:
    BufferPool(size_t count, size_t buffer_size = kPacketBufferSize);
    BufferPool(const BufferPool&) = delete;
    BufferPool& operator=(const BufferPool&) = delete;

    // An empty PooledBuffer when every buffer is out (counted in exhausted()).
    PooledBuffer acquire();

    size_t buffer_size() const { return buffer_size_; }
    size_t count() const { return count_; }
    size_t available() const { return free_.size(); }
    uint64_t exhausted() const { return exhausted_; }

  private:
    friend class PooledBuffer;
    std::span<uint8_t> buffer(uint32_t index) const {
        return {memory_.get() + size_t{index} * buffer_size_, buffer_size_};
    }
    void release(uint32_t index) { free_.push_back(index); }

    size_t count_;
    size_t buffer_size_;
    std::unique_ptr<uint8_t[]> memory_;
    std::vector<uint32_t> free_;
    uint64_t exhausted_ = 0;
};

// An IPv4 UDP address of a tunnel peer (host byte order, as nm::Ipv4).
struct UdpEndpoint {
    Ipv4 address;
    uint16_t port = 0;
    friend bool operator==(const UdpEndpoint&, const UdpEndpoint&) = default;
};

// One unit of I/O. What the fields mean depends on where it came from or goes:
//  - TUN read/write: `bytes` is the IP packet, `vnet` its offload state (all zero: ordinary).
//  - UDP receive: `peer` is the source; with GRO, `bytes` holds several datagrams of
//    `segment_size` bytes each (the last may be shorter); segment_size 0 means one datagram.
//  - UDP send: `peer` is the destination; segment_size > 0 sends `bytes` as datagrams of that size.
struct Packet {
    std::span<uint8_t> bytes;
    VirtioNetHdr vnet{};
    UdpEndpoint peer{};
    uint16_t segment_size = 0;
};

// Calls fn(std::span<uint8_t>) for each datagram of a (possibly GRO-coalesced) UDP receive.
template <class F>
void for_each_datagram(const Packet& received, F&& fn) {
    const size_t step = received.segment_size ? received.segment_size : received.bytes.size();
    for (size_t at = 0; at < received.bytes.size() && step > 0; at += step)
        fn(received.bytes.subspan(at, std::min(step, received.bytes.size() - at)));
}

// Up to `capacity` buffers taken from a pool at construction, and the packets read or built in
// them. Packets may also point at memory outside the batch (push): the merge output refers to the
// receive batch for packets it passes through unchanged.
class PacketBatch {
  public:
    // Throws std::runtime_error when the pool has fewer than `capacity` free buffers (a startup
    // sizing mistake).
    PacketBatch(BufferPool& pool, size_t capacity);

    size_t capacity() const { return buffers_.size(); }
    size_t buffer_size() const { return buffer_size_; }
    size_t size() const { return packets_.size(); }
    bool empty() const { return packets_.empty(); }
    bool full() const { return used_ == buffers_.size(); }
    Packet& operator[](size_t i) { return packets_[i]; }
    const Packet& operator[](size_t i) const { return packets_[i]; }
    std::span<Packet> packets() { return packets_; }
    std::span<const Packet> packets() const { return packets_; }
    auto begin() { return packets_.begin(); }
    auto end() { return packets_.end(); }

    // Forgets every packet; the buffers stay.
    void clear();
    // The whole buffer the next commit() will use (empty when full()).
    std::span<uint8_t> next_buffer() const;
    // Buffers not yet committed: spare_buffer(0) is next_buffer(). For readers that hand several
    // buffers to the kernel at once; commit() then takes them in this order.
    size_t spare_count() const { return buffers_.size() - used_; }
    std::span<uint8_t> spare_buffer(size_t k) const { return buffers_[used_ + k].data(); }
    // Records the first `length` bytes of next_buffer() as a new packet.
    Packet& commit(size_t length);
    // Records the first `length` bytes of spare_buffer(k) as a new packet: for a reader whose
    // buffers were not all filled (spare buffers are interchangeable).
    Packet& commit_spare(size_t k, size_t length);
    // Records a packet whose bytes live elsewhere.
    Packet& push(const Packet& packet);
    // Keeps only the packets for which keep(packet) is true, in order.
    template <class Pred>
    void retain(Pred keep) {
        std::erase_if(packets_, [&](const Packet& p) { return !keep(p); });
    }
    // Hands the buffer holding `packet` to the caller (to park it without copying; its bytes stay
    // valid) and puts a fresh pool buffer in its place. Empty if the pool is out or the packet's
    // bytes are not in this batch.
    PooledBuffer take_buffer(const Packet& packet);

  private:
    BufferPool* pool_;
    size_t buffer_size_;
    std::vector<PooledBuffer> buffers_;
    std::vector<Packet> packets_;
    size_t used_ = 0;  // buffers committed so far
};

}  // namespace nm
