#pragma once
// `netmanager status`: the running agent's GET /status over its unix socket, printed readably.
#include <boost/json/value.hpp>
#include <chrono>
#include <span>
#include <string>
#include <string_view>

#include "core/config.hpp"
#include "core/error.hpp"

namespace nm {

struct StatusOptions {
    std::string api_socket{default_api_socket};
    bool json = false;  // print the agent's JSON as it came
    std::chrono::milliseconds timeout{5000};
};

// Arguments after `status`. Errors name the flag.
Result<StatusOptions> parse_status_args(std::span<const std::string_view> args);

// The agent's /status body. unavailable: no agent answers on the socket; timeout or system: it
// took the connection but gave no answer; invalid_argument: it answered with an error status or
// something that is not a JSON object.
Result<boost::json::value> fetch_status(const StatusOptions& options);

// One "key  value" line per field, in the agent's order; lists as one indented line per element.
std::string format_status(const boost::json::value& status);

// The whole subcommand: 0 printed, 1 no agent or a bad answer, 2 bad arguments.
int run_status(std::span<const std::string_view> args);

}  // namespace nm
