#include "tunnel/packet_batch.hpp"

#include <stdexcept>
#include <string>
#include <utility>

namespace nm {

PooledBuffer::PooledBuffer(PooledBuffer&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)), index_(other.index_) {}

PooledBuffer& PooledBuffer::operator=(PooledBuffer&& other) noexcept {
    if (this != &other) {
        if (pool_) pool_->release(index_);
        pool_ = std::exchange(other.pool_, nullptr);
        index_ = other.index_;
    }
    return *this;
}

PooledBuffer::~PooledBuffer() {
    if (pool_) pool_->release(index_);
}

std::span<uint8_t> PooledBuffer::data() const {
    return pool_ ? pool_->buffer(index_) : std::span<uint8_t>{};
}

BufferPool::BufferPool(size_t count, size_t buffer_size)
    : count_(count), buffer_size_(buffer_size), memory_(new uint8_t[count * buffer_size]) {
    free_.reserve(count);
    // Handed out lowest index first, so a small working set stays in few pages.
    for (size_t i = count; i > 0; --i) free_.push_back(static_cast<uint32_t>(i - 1));
}

PooledBuffer BufferPool::acquire() {
    if (free_.empty()) {
        ++exhausted_;
        return {};
    }
    const uint32_t index = free_.back();
    free_.pop_back();
    return PooledBuffer(this, index);
}

PacketBatch::PacketBatch(BufferPool& pool, size_t capacity)
    : pool_(&pool), buffer_size_(pool.buffer_size()) {
    if (pool.available() < capacity)
        throw std::runtime_error("buffer pool has " + std::to_string(pool.available()) +
                                 " free buffers, a batch needs " + std::to_string(capacity));
    buffers_.reserve(capacity);
    for (size_t i = 0; i < capacity; ++i) buffers_.push_back(pool.acquire());
    // Pass-through packets of a merge may outnumber buffers; reserve so steady state never grows.
    packets_.reserve(capacity * 4);
}

void PacketBatch::clear() {
    packets_.clear();
    used_ = 0;
}

std::span<uint8_t> PacketBatch::next_buffer() const {
    return full() ? std::span<uint8_t>{} : buffers_[used_].data();
}

Packet& PacketBatch::commit(size_t length) {
    if (full() || length > buffer_size_)
        throw std::logic_error("PacketBatch::commit past capacity");
    Packet& p = packets_.emplace_back();
    p.bytes = buffers_[used_++].data().first(length);
    return p;
}

Packet& PacketBatch::commit_spare(size_t k, size_t length) {
    if (k >= spare_count()) throw std::logic_error("PacketBatch::commit_spare past capacity");
    if (k > 0) std::swap(buffers_[used_], buffers_[used_ + k]);
    return commit(length);
}

Packet& PacketBatch::push(const Packet& packet) {
    return packets_.emplace_back(packet);
}

PooledBuffer PacketBatch::take_buffer(const Packet& packet) {
    const uint8_t* at = packet.bytes.data();
    for (auto& buffer : buffers_) {
        auto data = buffer.data();
        if (at < data.data() || at >= data.data() + data.size()) continue;
        PooledBuffer fresh = pool_->acquire();
        if (!fresh) return {};
        std::swap(buffer, fresh);
        return fresh;
    }
    return {};
}

}  // namespace nm
