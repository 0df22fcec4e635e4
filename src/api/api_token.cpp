#include "api/api_token.hpp"

#include <strings.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace nm {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

}  // namespace

Result<std::string> read_api_token(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        return fail(Errc::invalid_argument,
                    "cannot read the API token file " + path + ": " + std::strerror(errno));
    std::string line;
    std::getline(in, line);
    auto token = trim(line);
    if (token.empty())
        return fail(Errc::invalid_argument, "the API token file " + path + " has no token");
    return std::string(token);
}

bool bearer_matches(std::string_view authorization, std::string_view token) {
    constexpr std::string_view scheme = "bearer ";
    if (authorization.size() < scheme.size() ||
        ::strncasecmp(authorization.data(), scheme.data(), scheme.size()) != 0)
        return false;
    auto given = trim(authorization.substr(scheme.size()));
    // Every byte of the longer one is looked at, so the time does not tell how much matched.
    unsigned char diff = given.size() == token.size() ? 0 : 1;
    size_t n = std::max(given.size(), token.size());
    for (size_t i = 0; i < n; ++i) {
        unsigned char a = i < given.size() ? given[i] : 0;
        unsigned char b = i < token.size() ? token[i] : 0;
        diff |= a ^ b;
    }
    return diff == 0;
}

}  // namespace nm
