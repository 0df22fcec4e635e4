#pragma once
// A shard's own io_uring for the data path (architecture.md "Shards"). Every SQE carries a tag of
// ours in user_data (slot and generation of the operation it belongs to), cancels go by those
// tags, and a completion whose tag names no operation in flight is counted and dropped: it can
// never reach the wrong operation. Completions that finish inside io_uring_enter are picked up at
// once; for those that finish later the shard's executor waits until the ring's fd is readable.
#include <liburing.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/error.hpp"
#include "core/gate.hpp"
#include "core/shard.hpp"
#include "core/wakeup.hpp"

namespace nm {

struct UringCounters {
    uint64_t enters = 0;       // io_uring_enter calls that submitted
    uint64_t submitted = 0;    // SQEs of our operations
    uint64_t completions = 0;  // CQEs delivered to their operation
    uint64_t wakeups = 0;      // the executor woke for the ring's fd
    uint64_t cancels = 0;      // cancel SQEs
    uint64_t stray = 0;        // CQEs whose tag named no operation in flight (never delivered)
};

class UringBatch;

// Points a prepared SQE at the file registered as `file_index` (Uring::register_file); with -1
// (the kernel refused, or the file was let go) it keeps the plain fd the prep put there.
inline void use_registered_file(io_uring_sqe* sqe, int file_index) {
    if (file_index >= 0) {
        sqe->fd = file_index;
        sqe->flags |= IOSQE_FIXED_FILE;
    }
}

// Linked receive chains follow the traffic: one that came back full doubles (up to `capacity`),
// one that did not shrinks to twice what it got, never below kMinChain.
inline constexpr size_t kMinChain = 4;
inline size_t next_chain_length(size_t filled, size_t length, size_t capacity) {
    return filled == length ? std::min(length * 2, capacity) : std::max(kMinChain, filled * 2);
}

class Uring : public std::enable_shared_from_this<Uring> {
  public:
    // A ring of `entries` SQEs whose async completions wake `context` (one shard's).
    static Result<std::shared_ptr<Uring>> open(asio::io_context& context, unsigned entries = 256);
    ~Uring();
    Uring(const Uring&) = delete;
    Uring& operator=(const Uring&) = delete;

    asio::io_context& context() { return context_; }
    const UringCounters& counters() const { return counters_; }
    size_t in_flight() const { return in_flight_; }

    // Puts fd in the ring's file table; returns its index for IOSQE_FIXED_FILE, or -1 when the
    // kernel refuses (use the plain fd then). Unregister before closing the fd.
    int register_file(int fd);
    void unregister_file(int index);
    // Registers a ring of provided buffers (entries: a power of two) under a new group id;
    // returns the id, or -1 when the kernel refuses. Unregister once no operation uses it.
    int register_buffer_ring(io_uring_buf_ring* ring, unsigned entries);
    void unregister_buffer_ring(int group);
    // Submits what is prepared when fewer than n SQEs are free, so a chain of n goes in whole.
    void make_room(unsigned n);

  private:
    friend class UringBatch;
    struct Slot {
        UringBatch* batch = nullptr;
        uint32_t index = 0;
        uint32_t generation = 1;
    };
    static constexpr uint64_t kCancelTag = ~uint64_t{0};  // no slot has index 0xffffffff

    explicit Uring(asio::io_context& context);
    // An SQE for operation i of batch, zeroed; nullptr when the ring is full even after a submit.
    io_uring_sqe* sqe_for(UringBatch& batch, size_t i, uint64_t& tag);
    void cancel(uint64_t tag);
    Result<void> submit();
    // Delivers every CQE waiting in the completion queue.
    void reap();
    // Blocks up to `ms` for one completion, then reaps (destructors only).
    void wait_blocking(int ms);
    // Waits for the ring's fd when operations are in flight and no wait is pending.
    void arm();

    asio::io_context& context_;
    io_uring ring_{};
    asio::posix::stream_descriptor wake_fd_;
    std::vector<Slot> slots_;
    std::vector<uint32_t> free_slots_;
    std::vector<int> files_;  // registered fds by index, -1 for a free index
    int next_group_ = 0;      // provided-buffer group ids handed out
    size_t in_flight_ = 0;
    bool pending_submit_ = false;
    bool armed_ = false;  // a wait for the ring's fd is pending
    UringCounters counters_;
};

// The operations one coroutine submits together and waits for as a whole. Owned by an I/O object
// that outlives its operations: destroying a batch cancels and drains what is in flight.
class UringBatch {
  public:
    struct Op {
        int result = 0;
        uint32_t flags = 0;
        bool in_flight = false;
        uint64_t tag = 0;
    };
    // One completion of a multishot operation, in arrival order.
    struct Shot {
        int result;
        uint32_t flags;
    };

    UringBatch(std::shared_ptr<Uring> ring, size_t capacity);
    ~UringBatch();
    UringBatch(const UringBatch&) = delete;
    UringBatch& operator=(const UringBatch&) = delete;

    size_t capacity() const { return ops_.size(); }
    const Op& op(size_t i) const { return ops_[i]; }
    size_t pending() const { return pending_; }
    Uring& ring() { return *ring_; }

    // Prepares operation i: prep(sqe) fills a zeroed SQE (opcode, fd, flags...), then its tag goes
    // into user_data. False when the ring has no room (submit what is prepared and retry).
    template <class Prep>
    bool prepare(size_t i, Prep&& prep) {
        uint64_t tag = 0;
        io_uring_sqe* sqe = ring_->sqe_for(*this, i, tag);
        if (!sqe) return false;
        prep(sqe);
        io_uring_sqe_set_data64(sqe, tag);
        return true;
    }
    // Submits what was prepared (one io_uring_enter), takes the completions that are already
    // there and waits until every operation of the batch is done.
    awaitable<Result<void>> run();
    // Submits and takes what completed at once, without waiting (for writes that never wait).
    Result<void> submit() { return ring_->submit(); }
    // For multishot operations: every completion is also queued in shots() and wakes
    // wait_shot(), not only the last one of the batch.
    void keep_shots() { keep_shots_ = true; }
    std::vector<Shot>& shots() { return shots_; }
    // Submits what was prepared and waits until a shot is queued or nothing is in flight.
    awaitable<Result<void>> wait_shot();
    // Cancels every operation in flight, and every one still to start of a linked chain.
    void cancel();
    // Blocks until nothing of this batch is in flight, cancelling it (destructors, close).
    void drain();

  private:
    friend class Uring;
    void completed(size_t i, int result, uint32_t flags);
    void cancel_in_flight();
    static Result<void> destroyed();

    std::shared_ptr<Uring> ring_;
    std::vector<Op> ops_;
    size_t pending_ = 0;
    bool cancelling_ = false;
    bool keep_shots_ = false;
    std::vector<Shot> shots_;
    // Told when the batch is done or a shot is queued. run() and wait_shot() hold gate_ while
    // they wait: a batch destroyed meanwhile closes it, and they leave without touching it.
    Wakeup wake_;
    Gate gate_;
};

}  // namespace nm
