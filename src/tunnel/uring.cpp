#include "tunnel/uring.hpp"

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>

#include "core/log.hpp"

namespace nm {
namespace {
constexpr unsigned kFileSlots = 16;
constexpr auto kDrainLimit = std::chrono::seconds(2);
}  // namespace

Result<std::shared_ptr<Uring>> Uring::open(asio::io_context& context, unsigned entries) {
    std::shared_ptr<Uring> ring(new Uring(context));
    io_uring_params params{};
    params.flags = IORING_SETUP_CLAMP;
    if (int r = io_uring_queue_init_params(entries, &ring->ring_, &params); r < 0) {
        ring->ring_.ring_fd = -1;
        return fail_errno("io_uring_queue_init", -r);
    }
    // The ring's own fd is readable while completions wait; the executor polls it (no eventfd
    // to read back). The descriptor only borrows it: released before the ring exits.
    boost::system::error_code ec;
    ring->wake_fd_.assign(ring->ring_.ring_fd, ec);
    if (ec) return fail(Errc::system, "poll the ring's fd: " + ec.message());
    if (io_uring_register_files_sparse(&ring->ring_, kFileSlots) == 0)
        ring->files_.assign(kFileSlots, -1);
    return ring;
}

Uring::Uring(asio::io_context& context) : context_(context), wake_fd_(context) {}

Uring::~Uring() {
    // Every batch holds the ring, so none is left with operations in flight; a stray in-flight
    // count here would be a bug in this file.
    if (in_flight_ > 0)
        NM_LOG(error, "uring") << in_flight_ << " operations still in flight at ring exit";
    boost::system::error_code ignored;
    wake_fd_.cancel(ignored);
    if (wake_fd_.is_open()) (void)wake_fd_.release();
    if (ring_.ring_fd >= 0) io_uring_queue_exit(&ring_);
}

int Uring::register_file(int fd) {
    for (size_t i = 0; i < files_.size(); ++i) {
        if (files_[i] != -1) continue;
        if (io_uring_register_files_update(&ring_, static_cast<unsigned>(i), &fd, 1) != 1)
            return -1;
        files_[i] = fd;
        return static_cast<int>(i);
    }
    return -1;
}

void Uring::unregister_file(int index) {
    if (index < 0 || static_cast<size_t>(index) >= files_.size()) return;
    int none = -1;
    io_uring_register_files_update(&ring_, static_cast<unsigned>(index), &none, 1);
    files_[static_cast<size_t>(index)] = -1;
}

int Uring::register_buffer_ring(io_uring_buf_ring* ring, unsigned entries) {
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uintptr_t>(ring);
    reg.ring_entries = entries;
    reg.bgid = static_cast<uint16_t>(next_group_);
    if (io_uring_register_buf_ring(&ring_, &reg, 0) != 0) return -1;
    return next_group_++;
}

void Uring::unregister_buffer_ring(int group) {
    if (group >= 0) io_uring_unregister_buf_ring(&ring_, group);
}

void Uring::make_room(unsigned n) {
    if (io_uring_sq_space_left(&ring_) < n && io_uring_submit(&ring_) > 0) ++counters_.enters;
}

io_uring_sqe* Uring::sqe_for(UringBatch& batch, size_t i, uint64_t& tag) {
    if (i >= batch.ops_.size() || batch.ops_[i].in_flight)
        throw std::logic_error("uring: operation prepared twice or out of range");
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) {
        if (io_uring_submit(&ring_) > 0) ++counters_.enters;
        sqe = io_uring_get_sqe(&ring_);
        if (!sqe) return nullptr;
    }
    std::memset(sqe, 0, sizeof *sqe);
    uint32_t slot;
    if (free_slots_.empty()) {
        slot = static_cast<uint32_t>(slots_.size());
        slots_.emplace_back();
    } else {
        slot = free_slots_.back();
        free_slots_.pop_back();
    }
    Slot& s = slots_[slot];
    s.batch = &batch;
    s.index = static_cast<uint32_t>(i);
    tag = (uint64_t{s.generation} << 32) | slot;
    if (batch.pending_ == 0) batch.cancelling_ = false;
    batch.ops_[i] = {0, 0, true, tag};
    ++batch.pending_;
    ++in_flight_;
    ++counters_.submitted;
    pending_submit_ = true;
    return sqe;
}

void Uring::cancel(uint64_t tag) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) {
        if (io_uring_submit(&ring_) > 0) ++counters_.enters;
        sqe = io_uring_get_sqe(&ring_);
        if (!sqe) return;  // a later completion cancels again
    }
    std::memset(sqe, 0, sizeof *sqe);
    io_uring_prep_cancel64(sqe, tag, 0);
    io_uring_sqe_set_data64(sqe, kCancelTag);
    ++counters_.cancels;
    pending_submit_ = true;
}

Result<void> Uring::submit() {
    for (int tries = 0;; ++tries) {
        const int r = io_uring_submit(&ring_);
        if (r >= 0) {
            if (r > 0) ++counters_.enters;
            break;
        }
        if (r == -EINTR) continue;
        if ((r == -EAGAIN || r == -EBUSY) && tries < 16) {
            reap();
            continue;
        }
        return fail_errno("io_uring_submit", -r);
    }
    pending_submit_ = false;
    reap();
    arm();
    return {};
}

void Uring::reap() {
    for (;;) {
        unsigned head;
        unsigned seen = 0;
        io_uring_cqe* cqe;
        io_uring_for_each_cqe(&ring_, head, cqe) {
            ++seen;
            const uint64_t tag = cqe->user_data;
            if (tag == kCancelTag) continue;
            const uint32_t slot = static_cast<uint32_t>(tag);
            const uint32_t generation = static_cast<uint32_t>(tag >> 32);
            if (slot >= slots_.size() || !slots_[slot].batch ||
                slots_[slot].generation != generation) {
                ++counters_.stray;
                continue;
            }
            Slot& s = slots_[slot];
            UringBatch* batch = s.batch;
            const size_t index = s.index;
            if (!(cqe->flags & IORING_CQE_F_MORE)) {
                s.batch = nullptr;
                ++s.generation;
                free_slots_.push_back(slot);
                --in_flight_;
            }
            ++counters_.completions;
            batch->completed(index, cqe->res, cqe->flags);
        }
        if (seen == 0) break;
        io_uring_cq_advance(&ring_, seen);
    }
    if (pending_submit_) {
        pending_submit_ = false;
        if (io_uring_submit(&ring_) > 0) ++counters_.enters;
    }
    // Nothing left to wait for (everything closed or cancelled): a pending wait would keep the
    // shard's context from running dry.
    if (in_flight_ == 0 && armed_) {
        boost::system::error_code ignored;
        wake_fd_.cancel(ignored);
    }
}

void Uring::wait_blocking(int ms) {
    if (pending_submit_) {
        pending_submit_ = false;
        if (io_uring_submit(&ring_) > 0) ++counters_.enters;
    }
    __kernel_timespec timeout{0, static_cast<long long>(ms) * 1000000};
    io_uring_cqe* cqe = nullptr;
    io_uring_wait_cqe_timeout(&ring_, &cqe, &timeout);
    reap();
}

void Uring::arm() {
    // Waits only while something is in flight, so a shard whose operations have all finished
    // (closed, cancelled) runs dry and stops.
    if (armed_ || in_flight_ == 0) return;
    armed_ = true;
    // The wait ends after the ring when its last owner let it go meanwhile: then it is a no-op.
    wake_fd_.async_wait(asio::posix::stream_descriptor::wait_read,
                        [weak = weak_from_this()](boost::system::error_code ec) {
                            auto ring = weak.lock();
                            if (!ring) return;
                            ring->armed_ = false;
                            if (!ec) {
                                ++ring->counters_.wakeups;
                                ring->reap();
                            }
                            // Cancelled for being idle: operations submitted since need a wait.
                            ring->arm();
                        });
}

UringBatch::UringBatch(std::shared_ptr<Uring> ring, size_t capacity)
    : ring_(std::move(ring)), ops_(capacity), wake_(ring_->context().get_executor()) {}

UringBatch::~UringBatch() {
    drain();
}

awaitable<Result<void>> UringBatch::run() {
    const Gate::Holder hold = gate_.hold();
    auto submitted = ring_->submit();
    if (!submitted) co_return submitted;
    while (pending_ > 0) {
        // Taken into a variable first (g++-12, core/wakeup.hpp).
        const bool woken = co_await wake_.wait();
        if (!woken || hold.gate_closed()) co_return destroyed();
    }
    co_return Result<void>{};
}

awaitable<Result<void>> UringBatch::wait_shot() {
    const Gate::Holder hold = gate_.hold();
    auto submitted = ring_->submit();
    if (!submitted) co_return submitted;
    while (shots_.empty() && pending_ > 0) {
        const bool woken = co_await wake_.wait();
        if (!woken || hold.gate_closed()) co_return destroyed();
    }
    co_return Result<void>{};
}

Result<void> UringBatch::destroyed() {
    return fail(Errc::unavailable, "ring operations destroyed");
}

void UringBatch::completed(size_t i, int result, uint32_t flags) {
    Op& op = ops_[i];
    op.result = result;
    op.flags = flags;
    if (keep_shots_) {
        shots_.push_back({result, flags});
        wake_.notify();
    }
    if (flags & IORING_CQE_F_MORE) return;
    op.in_flight = false;
    --pending_;
    // A cancelled head of a hard-linked chain lets the next operation start: cancel that too.
    if (cancelling_ && pending_ > 0) {
        for (Op& next : ops_)
            if (next.in_flight) {
                ring_->cancel(next.tag);
                break;
            }
    }
    if (pending_ == 0) wake_.notify();
}

void UringBatch::cancel_in_flight() {
    for (Op& op : ops_)
        if (op.in_flight) ring_->cancel(op.tag);
}

void UringBatch::cancel() {
    if (pending_ == 0) return;
    cancelling_ = true;
    cancel_in_flight();
    (void)ring_->submit();
}

void UringBatch::drain() {
    if (pending_ == 0) return;
    cancel();
    const auto deadline = std::chrono::steady_clock::now() + kDrainLimit;
    while (pending_ > 0 && std::chrono::steady_clock::now() < deadline) {
        ring_->wait_blocking(20);
        if (pending_ > 0) cancel_in_flight();
    }
    if (pending_ > 0)
        NM_LOG(error, "uring") << pending_ << " operations did not finish after cancel";
}

}  // namespace nm
