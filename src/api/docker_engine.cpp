#include "api/docker_engine.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>

namespace nm {

namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;

DockerEngine::DockerEngine(std::string socket_path, std::chrono::milliseconds timeout)
    : socket_path_(std::move(socket_path)), timeout_(timeout) {}

awaitable<Result<pid_t>> DockerEngine::container_pid(std::string id) {
    auto executor = co_await asio::this_coro::executor;
    beast::basic_stream<local> stream(executor);
    auto use = asio::as_tuple(asio::use_awaitable);
    std::string engine = "container engine at " + socket_path_;

    stream.expires_after(timeout_);
    auto [connect_error] = co_await stream.async_connect(local::endpoint(socket_path_), use);
    if (connect_error)
        co_return fail(Errc::unavailable, "/docker/deploy needs a container engine, but none answers at " +
                                              socket_path_ + ": " + connect_error.message() +
                                              " (use /container/deploy with a pid instead)");

    http::request<http::empty_body> request{http::verb::get, "/containers/" + id + "/json", 11};
    request.set(http::field::host, "docker");
    request.set(http::field::connection, "close");
    stream.expires_after(timeout_);
    auto [write_error, written] = co_await http::async_write(stream, request, use);
    (void)written;
    if (write_error) co_return fail(Errc::unavailable, engine + ": " + write_error.message());

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(4 * 1024 * 1024);
    auto [read_error, read] = co_await http::async_read(stream, buffer, parser, use);
    (void)read;
    if (read_error) co_return fail(Errc::unavailable, engine + ": no answer: " + read_error.message());
    auto& response = parser.get();
    if (response.result() == http::status::not_found)
        co_return fail(Errc::not_found, "the container engine knows no container '" + id + "'");
    if (response.result() != http::status::ok)
        co_return fail(Errc::unavailable, engine + " answered " + std::to_string(response.result_int()) +
                                              " for container '" + id + "'");

    boost::system::error_code ec;
    auto value = boost::json::parse(response.body(), ec);
    const boost::json::object* state = nullptr;
    if (!ec && value.is_object())
        if (auto* s = value.as_object().if_contains("State"); s && s->is_object()) state = &s->as_object();
    if (!state) co_return fail(Errc::unavailable, engine + ": container inspect answer without a State object");
    auto* running = state->if_contains("Running");
    if (running && running->is_bool() && !running->as_bool())
        co_return fail(Errc::conflict, "container '" + id + "' is not running");
    auto* pid = state->if_contains("Pid");
    if (!pid || !pid->is_int64() || pid->as_int64() <= 0)
        co_return fail(Errc::conflict, "container '" + id + "' has no running process (State.Pid missing or 0)");
    co_return static_cast<pid_t>(pid->as_int64());
}

}  // namespace nm
