#include "tunnel/tun_queue_uring.hpp"

#include <linux/fs.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "core/retry.hpp"
#include "tunnel/tun_queue.hpp"

namespace nm {
TunQueue::TunQueue(TunQueue&&) noexcept = default;
TunQueue& TunQueue::operator=(TunQueue&&) noexcept = default;
TunQueue::~TunQueue() = default;

void TunQueue::use_ring(const std::shared_ptr<Uring>& ring, size_t batch) {
    uring_ = std::make_unique<UringTunIo>(ring, descriptor_.native_handle(), vnet_hdr_, batch);
}

UringTunIo::UringTunIo(const std::shared_ptr<Uring>& ring, int fd, bool vnet_hdr, size_t batch)
    : ring_(ring),
      fd_(fd),
      file_index_(ring->register_file(fd)),
      vnet_hdr_(vnet_hdr),
      chain_(std::min(batch, kMinChain)),
      reads_(ring, batch),
      writes_(ring, batch),
      write_iovs_(batch * 2),
      write_headers_(batch * kVnetHdrSize) {}

UringTunIo::~UringTunIo() {
    reads_.drain();
    writes_.drain();
    ring_->unregister_file(file_index_);
}

void UringTunIo::close() {
    if (closed_) return;
    closed_ = true;
    reads_.cancel();
    // The registered file holds the queue open: let it go so the device can disappear.
    ring_->unregister_file(file_index_);
    file_index_ = -1;
}

awaitable<Result<size_t>> UringTunIo::read_batch(PacketBatch& batch, TunQueueCounters& counters) {
    batch.clear();
    const size_t header = vnet_hdr_ ? kVnetHdrSize : 0;
    for (;;) {
        if (closed_) co_return fail(Errc::unavailable, "TUN queue closed");
        const size_t n = std::min({chain_, batch.spare_count(), reads_.capacity()});
        ring_->make_room(static_cast<unsigned>(n));
        for (size_t i = 0; i < n; ++i) {
            const auto buffer = batch.spare_buffer(i);
            const bool prepared = reads_.prepare(i, [&](io_uring_sqe* sqe) {
                io_uring_prep_read(sqe, fd_, buffer.data(), static_cast<unsigned>(buffer.size()),
                                   0);
                use_registered_file(sqe, file_index_);
                // The first waits for a packet; the rest read only what is already queued.
                if (i > 0) sqe->rw_flags = RWF_NOWAIT;
                if (i + 1 < n) sqe->flags |= IOSQE_IO_HARDLINK;
            });
            if (!prepared) co_return fail(Errc::unavailable, "TUN read: ring full");
        }
        auto done = co_await reads_.run();
        if (!done) co_return tl::unexpected(done.error());
        size_t filled = 0, committed = 0;
        int error = 0;
        for (size_t i = 0; i < n; ++i) {
            const int r = reads_.op(i).result;
            if (r < 0) {
                // EAGAIN: the queue ran dry; ECANCELED: closed.
                if (r != -EAGAIN && r != -ECANCELED && r != -EINTR) {
                    ++counters.read_errors;
                    if (!error) error = -r;
                }
                continue;
            }
            ++filled;
            if (static_cast<size_t>(r) <= header) {
                ++counters.read_errors;
                continue;
            }
            // Read i went into spare buffer i of the batch as it was before this loop; the
            // packets committed since moved the spare buffers' start up by `committed`.
            Packet& p = batch.commit_spare(i - committed, static_cast<size_t>(r));
            ++committed;
            if (vnet_hdr_) p.vnet = load_vnet_hdr(p.bytes.data());
            p.bytes = p.bytes.subspan(header);
            ++counters.read_packets;
            counters.read_bytes += p.bytes.size();
        }
        chain_ = next_chain_length(filled, n, reads_.capacity());
        if (!batch.empty()) {
            ++counters.read_batches;
            co_return batch.size();
        }
        if (closed_) co_return fail(Errc::unavailable, "TUN queue closed");
        if (error) {
            // Transient failures (core/retry.hpp) are retried after their pause.
            auto again = co_await back_off(error, "read from TUN", counters.read_retries);
            if (!again) co_return tl::unexpected(again.error());
        }
    }
}

size_t UringTunIo::write_batch(std::span<const Packet> packets, TunQueueCounters& counters) {
    size_t written = 0;
    for (size_t at = 0; at < packets.size() && !closed_;) {
        const size_t n = std::min(packets.size() - at, writes_.capacity());
        ring_->make_room(static_cast<unsigned>(n));
        size_t prepared = 0;
        for (; prepared < n; ++prepared) {
            const Packet& p = packets[at + prepared];
            iovec* iov = &write_iovs_[prepared * 2];
            unsigned count = 0;
            if (vnet_hdr_) {
                uint8_t* h = &write_headers_[prepared * kVnetHdrSize];
                store_vnet_hdr(p.vnet, h);
                iov[count++] = {h, kVnetHdrSize};
            }
            iov[count++] = {p.bytes.data(), p.bytes.size()};
            // Never waits: a full queue answers EAGAIN at once and the packet is dropped, as
            // the readiness path does; so every write is done when the submit returns.
            if (!writes_.prepare(prepared, [&](io_uring_sqe* sqe) {
                    io_uring_prep_writev(sqe, fd_, iov, count, 0);
                    use_registered_file(sqe, file_index_);
                    sqe->rw_flags = RWF_NOWAIT;
                }))
                break;
        }
        if (prepared == 0) break;
        (void)writes_.submit();
        // Defensive: a kernel that finished a write outside the submit is waited for here, since
        // the iovecs and the packets' buffers must outlive it.
        if (writes_.pending() > 0) writes_.drain();
        for (size_t i = 0; i < prepared; ++i) {
            const int r = writes_.op(i).result;
            const Packet& p = packets[at + i];
            if (r >= 0) {
                ++written;
                ++counters.write_packets;
                counters.write_bytes += p.bytes.size();
            } else if (r == -EAGAIN || r == -ENOBUFS) {
                ++counters.write_dropped;
            } else {
                ++counters.write_errors;
                counters.last_write_errno = -r;
            }
        }
        at += prepared;
    }
    return written;
}

}  // namespace nm
