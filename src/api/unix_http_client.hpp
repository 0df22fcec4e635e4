#pragma once
// One HTTP GET over a unix socket, answered and closed: the Docker engine's API for
// /docker/deploy, and a running agent's /status for `netmanager status`.
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <string>

#include "core/error.hpp"
#include "core/shard.hpp"

namespace nm {

using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

// Any answer, whatever its status. Errors name the socket and the kernel's or Beast's reason:
// unavailable "nothing answers at PATH: ..." when the connect fails (no such socket, nobody
// listening); timeout or system "no answer at PATH ..." when the server takes the connection
// but gives no whole answer within timeout.
awaitable<Result<HttpResponse>> unix_http_get(std::string socket_path, std::string target,
                                              std::chrono::milliseconds timeout);

}  // namespace nm
