#include "core/error.hpp"

#include <cstring>
#include <utility>

namespace nm {

std::string_view to_string(Errc code) {
    switch (code) {
        case Errc::invalid_argument:
            return "invalid argument";
        case Errc::not_found:
            return "not found";
        case Errc::exists:
            return "exists";
        case Errc::exhausted:
            return "exhausted";
        case Errc::conflict:
            return "conflict";
        case Errc::unavailable:
            return "unavailable";
        case Errc::timeout:
            return "timeout";
        case Errc::system:
            return "system";
    }
    return "unknown";
}

std::string excerpt(std::string_view text, size_t max) {
    if (text.size() <= max) return std::string(text);
    return std::string(text.substr(0, max)) + "...(" + std::to_string(text.size()) + " bytes)";
}

tl::unexpected<Error> fail_errno(std::string what, int err) {
    return fail(Errc::system, std::move(what) + ": " + std::strerror(err));
}

}  // namespace nm
