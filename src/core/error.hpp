#pragma once
// Errors are values: every fallible call across a module boundary returns Result<T>.
#include <string>
#include <string_view>
#include <tl/expected.hpp>

namespace nm {

enum class Errc {
    invalid_argument,  // the caller's input is wrong (bad field, bad packet, bad config)
    not_found,
    exists,
    exhausted,    // a pool or queue is full
    conflict,     // the request contradicts current state
    unavailable,  // a peer or service cannot be reached
    timeout,
    system,  // the kernel refused; the message carries its reason
};

std::string_view to_string(Errc code);

struct Error {
    Errc code;
    std::string message;
};

template <class T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(Errc code, std::string message) {
    return tl::unexpected<Error>(Error{code, std::move(message)});
}

// Input quoted in an error message, cut to `max` characters ("...") so that hostile input
// cannot flood the logs.
std::string excerpt(std::string_view text, size_t max = 64);

// "what: strerror(errno)" for a failed system call.
tl::unexpected<Error> fail_errno(std::string what, int err);

}  // namespace nm

// In a function returning Result<...>: evaluates a Result expression and returns its error, if it
// has one, from the calling function.
#define NM_TRY(expr)                                                                    \
    do {                                                                                \
        if (auto nm_try_r = (expr); !nm_try_r) return tl::unexpected(nm_try_r.error()); \
    } while (0)
