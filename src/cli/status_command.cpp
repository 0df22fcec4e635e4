#include "cli/status_command.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <iostream>

#include "api/unix_http_client.hpp"
#include "cli/subcommand_args.hpp"

namespace nm {
namespace json = boost::json;

namespace {

constexpr std::string_view status_help = R"(Usage: netmanager status [--api-socket PATH] [--json]

Asks the running agent for its state (GET /status on its unix socket) and prints it.
Exit status 1 when no agent answers.

  --api-socket PATH   the agent's socket (default /etc/netmanager/netmanager.sock)
  --json              print the agent's JSON answer unchanged
)";

// A value on one line: strings bare, null as "-", objects as "key=value ...".
std::string inline_text(const json::value& v) {
    switch (v.kind()) {
        case json::kind::string:
            return std::string(v.get_string());
        case json::kind::null:
            return "-";
        case json::kind::object: {
            std::string out;
            for (const auto& [key, item] : v.get_object()) {
                if (!out.empty()) out += "  ";
                out += std::string(key) + "=" + inline_text(item);
            }
            return out;
        }
        default:
            return json::serialize(v);
    }
}

}  // namespace

Result<StatusOptions> parse_status_args(std::span<const std::string_view> args) {
    StatusOptions options;
    for (size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--api-socket") {
            if (i + 1 >= args.size() || args[i + 1].empty())
                return fail(Errc::invalid_argument, "flag --api-socket: needs a value");
            options.api_socket = std::string(args[++i]);
        } else if (args[i] == "--json") {
            options.json = true;
        } else {
            return fail(Errc::invalid_argument,
                        "status: unknown argument '" + excerpt(args[i]) + "' (see status --help)");
        }
    }
    return options;
}

Result<json::value> fetch_status(const StatusOptions& options) {
    asio::io_context io;
    Result<HttpResponse> answer = fail(Errc::unavailable, "no answer");
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
            answer = co_await unix_http_get(options.api_socket, "/status", options.timeout);
        },
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    io.run();
    if (!answer) return tl::unexpected(answer.error());

    boost::system::error_code ec;
    auto body = json::parse(answer->body(), ec);
    if (answer->result_int() != 200) {
        std::string reason = excerpt(answer->body(), 200);
        if (!ec && body.is_object())
            if (auto* e = body.as_object().if_contains("error"); e && e->is_string())
                reason = std::string(e->get_string());
        return fail(Errc::invalid_argument, "the agent at " + options.api_socket + " answered " +
                                                std::to_string(answer->result_int()) + ": " +
                                                reason);
    }
    if (ec || !body.is_object())
        return fail(Errc::invalid_argument, "the agent at " + options.api_socket +
                                                " answered /status with something other than a "
                                                "JSON object: " +
                                                excerpt(answer->body(), 200));
    return body;
}

std::string format_status(const json::value& status) {
    if (!status.is_object()) return inline_text(status) + "\n";
    const auto& fields = status.get_object();
    size_t width = 0;
    for (const auto& field : fields) width = std::max(width, field.key().size());
    std::string out;
    for (const auto& [key, value] : fields) {
        out += std::string(key);
        out.append(width + 2 - key.size(), ' ');
        if (value.is_array()) {
            const auto& items = value.get_array();
            out += items.empty() ? "none\n" : std::to_string(items.size()) + "\n";
            for (const auto& item : items) out += "  - " + inline_text(item) + "\n";
        } else {
            out += inline_text(value) + "\n";
        }
    }
    return out;
}

int run_status(std::span<const std::string_view> args) {
    auto options = subcommand_options(args, status_help, parse_status_args);
    if (!options) return options.error();
    auto status = fetch_status(*options);
    if (!status) {
        std::fprintf(stderr, "netmanager status: %s\n", status.error().message.c_str());
        if (status.error().code == Errc::unavailable)
            std::fprintf(stderr,
                         "netmanager status: no agent is running there (start it with `systemctl "
                         "start netmanager`; for an agent on another socket: --api-socket PATH)\n");
        return 1;
    }
    if (options->json)
        std::cout << json::serialize(*status) << "\n";
    else
        std::cout << "netmanager agent at " << options->api_socket << "\n"
                  << format_status(*status);
    return 0;
}

}  // namespace nm
