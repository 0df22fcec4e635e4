#pragma once
// Which failed system calls are worth trying again: a signal or a peer interrupted them, or the
// kernel was short of memory, buffers or descriptors for a moment. Loops retry those (after the
// pause given) and stop, saying why, on anything else: it will not go away by itself.
#include <chrono>
#include <cstdint>
#include <optional>

#include "core/async.hpp"
#include "core/error.hpp"

namespace nm {

// The pause before trying again after `os_error` (an errno), or nullopt when it is permanent.
std::optional<std::chrono::milliseconds> retry_after(int os_error);

// After a call failed with `os_error`: a transient failure is counted in `retries` and its pause
// waited out on the calling coroutine's executor, and the caller tries again; a permanent one
// comes back as the error of `what` ("read from TUN").
awaitable<Result<void>> back_off(int os_error, const char* what, uint64_t& retries);

}  // namespace nm
