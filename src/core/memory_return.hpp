#pragma once
// Gives the memory the allocator holds free back to the kernel after a burst. A flood leaves
// tens of MB freed inside glibc's per-thread arenas (the coroutine frames of refused table
// queries, queued on shard 0 faster than it ran them), which free() keeps because live
// allocations sit between the free pages; malloc_trim(0) returns every whole free page.
// Runs on one shard: each `interval`, when the arenas hold more than `threshold` bytes free,
// it trims, and logs what it gave back (debug).
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>

#include "core/async.hpp"
#include "core/gate.hpp"

namespace nm {

struct MemoryReturnOptions {
    std::chrono::milliseconds interval{2000};
    size_t threshold = 4u << 20;  // free bytes in the arenas that make a trim worth its pause
};

class MemoryReturn {
  public:
    MemoryReturn(const asio::io_context::executor_type& executor, MemoryReturnOptions options = {});
    // The loop; holds the gate while it runs and ends after stop().
    awaitable<void> run();
    void stop();
    // stop(), then resumes once the loop has ended.
    awaitable<void> close();

    // Bytes the allocator holds free in all its arenas.
    static size_t free_bytes();
    // Trims now; the free bytes before and after.
    struct Trimmed {
        size_t before = 0, after = 0;
    };
    static Trimmed trim();

  private:
    SteadyTimer timer_;
    MemoryReturnOptions options_;
    Gate gate_;
};

}  // namespace nm
