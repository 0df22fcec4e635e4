#include "api/unix_http_client.hpp"

#include <sys/un.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace nm {

namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;

namespace {
Errc answer_error(const boost::system::error_code& ec) {
    return ec == beast::error::timeout ? Errc::timeout : Errc::system;
}
}  // namespace

awaitable<Result<HttpResponse>> unix_http_get(std::string socket_path, std::string target,
                                              std::chrono::milliseconds timeout) {
    // Asio's endpoint throws on a path longer than sun_path; say so instead.
    if (socket_path.empty() || socket_path.size() >= sizeof(sockaddr_un::sun_path))
        co_return fail(Errc::invalid_argument,
                       "'" + excerpt(socket_path) + "' is not a usable unix socket path (1 to " +
                           std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " characters)");
    auto executor = co_await asio::this_coro::executor;
    beast::basic_stream<local> stream(executor);
    auto use = asio::as_tuple(asio::use_awaitable);

    stream.expires_after(timeout);
    auto [connect_error] = co_await stream.async_connect(local::endpoint(socket_path), use);
    if (connect_error)
        co_return fail(Errc::unavailable,
                       "nothing answers at " + socket_path + ": " + connect_error.message());

    http::request<http::empty_body> request{http::verb::get, target, 11};
    request.set(http::field::host, "localhost");
    request.set(http::field::connection, "close");
    stream.expires_after(timeout);
    auto [write_error, written] = co_await http::async_write(stream, request, use);
    (void)written;
    if (write_error)
        co_return fail(answer_error(write_error), "no answer at " + socket_path + " to GET " +
                                                      target + ": " + write_error.message());

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(4 * 1024 * 1024);
    auto [read_error, read] = co_await http::async_read(stream, buffer, parser, use);
    (void)read;
    if (read_error)
        co_return fail(answer_error(read_error), "no answer at " + socket_path + " to GET " +
                                                     target + ": " + read_error.message());
    co_return parser.release();
}

}  // namespace nm
