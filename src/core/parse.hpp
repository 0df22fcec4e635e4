#pragma once
// Numbers and names read from text.
#include <charconv>
#include <cstddef>
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

// One spelling of an enumerator; a table of them reads a setting both ways.
template <class E>
struct Named {
    std::string_view name;
    E value;
};

// The value `text` names in `table` (exactly, case and all), or none.
template <class E, std::size_t N>
constexpr std::optional<E> parse_name(std::string_view text, const Named<E> (&table)[N]) {
    for (const auto& entry : table)
        if (entry.name == text) return entry.value;
    return std::nullopt;
}

// `value`'s name in `table` (a literal, so .data() ends in a NUL), "" where it has none.
template <class E, std::size_t N>
constexpr std::string_view name_of(E value, const Named<E> (&table)[N]) {
    for (const auto& entry : table)
        if (entry.value == value) return entry.name;
    return {};
}

}  // namespace nm
