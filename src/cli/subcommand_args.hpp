#pragma once
// The start every subcommand (`netmanager status|logs ...`) shares: -h/--help anywhere prints its
// help, and arguments it does not take end it with the reason.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <span>
#include <string_view>
#include <tl/expected.hpp>
#include <utility>

namespace nm {

// The options `parse` reads from args, or the exit code the subcommand ends with at once: 0 after
// printing `help`, 2 after printing why the arguments are wrong.
template <class Parse>
auto subcommand_options(std::span<const std::string_view> args, std::string_view help, Parse parse)
    -> tl::expected<typename decltype(parse(args))::value_type, int> {
    if (std::ranges::any_of(args, [](auto a) { return a == "-h" || a == "--help"; })) {
        std::cout << help;
        return tl::unexpected(0);
    }
    auto options = parse(args);
    if (!options) {
        std::fprintf(stderr, "netmanager: %s\n", options.error().message.c_str());
        return tl::unexpected(2);
    }
    return std::move(*options);
}

}  // namespace nm
