#pragma once
// The optional bearer token of the TCP node API: read from a file at start, compared in
// constant time with each request's Authorization header.
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace nm {

// The file's first line without surrounding blanks; an unreadable file or an empty token is an
// error naming the file.
Result<std::string> read_api_token(const std::string& path);

// True when `authorization` is "Bearer <token>" (scheme case-insensitive, as RFC 6750), the
// comparison taking the same time wherever the first difference lies.
bool bearer_matches(std::string_view authorization, std::string_view token);

}  // namespace nm
