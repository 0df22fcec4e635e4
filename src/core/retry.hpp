#pragma once
// Which failed system calls are worth trying again: a signal or a peer interrupted them, or the
// kernel was short of memory, buffers or descriptors for a moment. Loops retry those (after the
// pause given) and stop, saying why, on anything else: it will not go away by itself.
#include <chrono>
#include <optional>

namespace nm {

// The pause before trying again after `os_error` (an errno), or nullopt when it is permanent.
std::optional<std::chrono::milliseconds> retry_after(int os_error);

}  // namespace nm
