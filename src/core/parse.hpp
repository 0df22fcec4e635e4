#pragma once
// Numbers read from text.
#include <charconv>
#include <optional>
#include <string_view>

namespace nm {

// The number the whole of `text` spells (decimal, a sign only where T has one), or none:
// empty, other characters before or after it, or out of T's range.
template <class T>
std::optional<T> parse_whole(std::string_view text) {
    T value{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return value;
}

}  // namespace nm
