#include "core/memory_return.hpp"

#include <malloc.h>

#include "core/log.hpp"

namespace nm {

MemoryReturn::MemoryReturn(const asio::io_context::executor_type& executor,
                           MemoryReturnOptions options)
    : timer_(executor), options_(options) {}

size_t MemoryReturn::free_bytes() {
    // fordblks: free chunks in every arena (mallinfo2 walks them all, under each arena's lock).
    return mallinfo2().fordblks;
}

MemoryReturn::Trimmed MemoryReturn::trim() {
    Trimmed t;
    t.before = free_bytes();
    ::malloc_trim(0);
    t.after = free_bytes();
    return t;
}

awaitable<void> MemoryReturn::run() {
    const auto hold = gate_.try_hold();
    while (hold && !gate_.closed()) {
        timer_.expires_after(options_.interval);
        co_await timer_.async_wait();
        if (gate_.closed()) break;
        if (free_bytes() <= options_.threshold) continue;
        const auto start = std::chrono::steady_clock::now();
        const Trimmed t = trim();
        NM_LOG(debug, "memory") << "gave free pages back to the kernel: " << (t.before >> 10)
                                << " kB free in the allocator before, " << (t.after >> 10)
                                << " kB after, in "
                                << std::chrono::duration_cast<std::chrono::microseconds>(
                                       std::chrono::steady_clock::now() - start)
                                       .count()
                                << " us";
    }
}

void MemoryReturn::stop() {
    gate_.refuse();
    timer_.cancel();
}

awaitable<void> MemoryReturn::close() {
    stop();
    co_await gate_.close();
}

}  // namespace nm
