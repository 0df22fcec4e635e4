#include "api/api_server.hpp"

#include <sys/stat.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>

#include "api/api_token.hpp"
#include "core/log.hpp"
#include "core/retry.hpp"

namespace nm {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;

namespace {
constexpr std::string_view subsystem = "api";

void log_failure(std::exception_ptr e) {
    if (!e) return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& err) {
        NM_LOG(error, subsystem) << "connection failed: " << err.what();
    }
}
}  // namespace

ApiServer::ApiServer(asio::any_io_executor executor, NodeControl& node, ApiServerOptions options)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      docker_(options_.docker_socket),
      router_(node, docker_, options_.networks) {}

ApiServer::~ApiServer() {
    if (own_socket_file_) ::unlink(options_.unix_socket.c_str());
}

Result<void> ApiServer::listen_unix() {
    namespace fs = std::filesystem;
    const std::string& path = options_.unix_socket;
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return fail(Errc::exists, "API socket path " + path +
                                          " exists and is not a socket; remove it or choose "
                                          "another path");
        // A socket file nobody accepts on is a leftover of an earlier run: remove it.
        local::socket probe(executor_);
        boost::system::error_code ec;
        probe.connect(local::endpoint(path), ec);
        if (!ec) return fail(Errc::exists, "another process already serves the API on " + path);
        if (::unlink(path.c_str()) != 0)
            return fail_errno("cannot remove stale API socket " + path, errno);
        NM_LOG(info, subsystem) << "removed stale API socket " << path;
    }
    std::error_code fs_error;
    auto parent = fs::path(path).parent_path();
    if (!parent.empty()) fs::create_directories(parent, fs_error);
    if (fs_error)
        return fail(Errc::system, "cannot create " + parent.string() + ": " + fs_error.message());
    auto acceptor = std::make_unique<local::acceptor>(executor_);
    boost::system::error_code ec;
    acceptor->open(local(), ec);
    if (!ec) acceptor->bind(local::endpoint(path), ec);
    if (!ec) own_socket_file_ = true;
    // Root only, whatever the umask: the socket needs no token because nobody else can connect.
    if (!ec && ::chmod(path.c_str(), 0600) != 0)
        ec = boost::system::error_code(errno, boost::system::system_category());
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail(Errc::system, "cannot listen on unix socket " + path + ": " + ec.message());
    unix_acceptor_ = std::move(acceptor);
    return {};
}

Result<void> ApiServer::listen_tcp() {
    auto endpoint = *options_.tcp;
    std::string where = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
    auto acceptor = std::make_unique<tcp::acceptor>(executor_);
    boost::system::error_code ec;
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail(Errc::system, "cannot listen on " + where + ": " + ec.message());
    tcp_port_ = acceptor->local_endpoint().port();
    tcp_acceptor_ = std::move(acceptor);
    return {};
}

Result<void> ApiServer::start() {
    if (started_) return {};
    if (!options_.tcp && options_.unix_socket.empty())
        return fail(Errc::invalid_argument, "the API needs a TCP port or a unix socket path");
    if (options_.tcp)
        if (auto r = listen_tcp(); !r) return r;
    if (!options_.unix_socket.empty()) {
        if (auto r = listen_unix(); !r) {
            tcp_acceptor_.reset();
            return r;
        }
    }
    started_ = true;
    if (tcp_acceptor_) {
        NM_LOG(info, subsystem) << "serving the node API on "
                                << tcp_acceptor_->local_endpoint().address().to_string() << ":"
                                << tcp_port_;
        asio::co_spawn(executor_, accept_loop<tcp>(*tcp_acceptor_), log_failure);
    }
    if (unix_acceptor_) {
        NM_LOG(info, subsystem) << "serving the node API on " << options_.unix_socket;
        asio::co_spawn(executor_, accept_loop<local>(*unix_acceptor_), log_failure);
    }
    return {};
}

void ApiServer::stop() {
    if (stopping_) return;
    stopping_ = true;
    boost::system::error_code ignored;
    if (tcp_acceptor_) tcp_acceptor_->close(ignored);
    if (unix_acceptor_) unix_acceptor_->close(ignored);
    if (own_socket_file_) {
        ::unlink(options_.unix_socket.c_str());
        own_socket_file_ = false;
    }
    // Idle connections close now; busy ones close after their answer.
    auto open = connections_;
    for (auto& [id, connection] : open)
        if (!connection->busy) connection->close();
}

awaitable<void> ApiServer::close() {
    stop();
    co_await gate_.close();
}

void ApiServer::stop_with(Shards& shards, unsigned shard) {
    shards.at_close(shard, "the node API", [this] { return close(); });
}

template <class Protocol>
awaitable<void> ApiServer::accept_loop(typename Protocol::acceptor& acceptor) {
    auto hold = gate_.try_hold();
    if (!hold) co_return;
    ++accepting_;
    SteadyTimer pause(executor_);
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
        if (stopping_ || ec == asio::error::operation_aborted) break;
        if (ec) {
            // Out of descriptors, a client that gave up...: wait a little and go on. Anything
            // else will not pass: say so and stop the agent rather than serve nothing.
            const auto wait = ec.category() == boost::system::system_category()
                                  ? retry_after(ec.value())
                                  : std::nullopt;
            if (!wait) {
                --accepting_;
                NM_LOG(error, subsystem) << "accept failed for good: " << ec.message();
                if (options_.on_fatal)
                    options_.on_fatal("node API: accept failed: " + ec.message());
                co_return;
            }
            if (accept_retries_++ % 1000 == 0)
                NM_LOG(warn, subsystem) << "accept failed: " << ec.message() << "; retrying";
            pause.expires_after(*wait);
            co_await pause.async_wait();
            continue;
        }
        if (connections_.size() >= options_.max_connections) {
            // Over the cap: closed before reading anything, so idle clients cannot exhaust us.
            if (refused_++ % 1000 == 0)
                NM_LOG(warn, subsystem) << "refusing a connection: " << connections_.size()
                                        << " open, the limit is " << options_.max_connections;
            boost::system::error_code ignored;
            socket.close(ignored);
            continue;
        }
        asio::co_spawn(executor_, serve<Protocol>(std::move(socket)), log_failure);
    }
    --accepting_;
}

template <class Protocol>
awaitable<void> ApiServer::serve(typename Protocol::socket socket) {
    auto hold = gate_.try_hold();
    if (!hold) co_return;  // the socket closes with this frame
    beast::basic_stream<Protocol> stream(std::move(socket));
    Connection connection;
    connection.close = [&stream] { stream.close(); };
    uint64_t id = next_connection_++;
    connections_[id] = &connection;
    beast::flat_buffer buffer;
    bool drain = false;

    for (;;) {
        connection.busy = false;
        if (stopping_) break;
        http::request_parser<http::string_body> parser;
        parser.body_limit(options_.body_limit);
        parser.header_limit(16 * 1024);
        stream.expires_after(options_.idle_timeout);
        auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
        (void)n;
        if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
            ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
            ec == asio::error::bad_descriptor)
            break;
        connection.busy = true;
        if (!ec) {
            stream.expires_after(options_.request_timeout);
            std::tie(ec, n) = co_await http::async_read(stream, buffer, parser, use_tuple);
        }

        ApiResponse answer;
        bool keep_alive = false;
        unsigned version = 11;
        if (ec == http::error::body_limit) {
            answer = error_response(413, "request body larger than the limit of " +
                                             std::to_string(options_.body_limit) + " bytes");
            drain = true;
        } else if (ec == http::error::header_limit) {
            answer = error_response(431, "request header larger than 16384 bytes");
            drain = true;
        } else if (ec == beast::error::timeout || ec == asio::error::operation_aborted) {
            break;  // the stream is closed already
        } else if (ec) {
            answer = error_response(400, "malformed HTTP request: " + ec.message());
            drain = true;
        } else if (constexpr bool over_tcp = std::is_same_v<Protocol, tcp>;
                   over_tcp && !options_.bearer_token.empty() &&
                   !bearer_matches(parser.get()[http::field::authorization],
                                   options_.bearer_token)) {
            ++unauthorized_;
            answer = error_response(401, "this API needs \"Authorization: Bearer <token>\"");
            answer.www_authenticate = "Bearer";
            version = parser.get().version();
            keep_alive = parser.get().keep_alive();
        } else {
            auto& request = parser.get();
            version = request.version();
            keep_alive = request.keep_alive();
            ApiRequest api{std::string(request.method_string()), std::string(request.target()),
                           std::move(request.body())};
            NM_LOG(debug, subsystem) << api.method << " " << api.target;
            answer = co_await router_.handle(std::move(api));
            // `api` was moved into the router; the request still holds method and target.
            if (answer.status >= 400)
                NM_LOG(info, subsystem)
                    << request.method_string() << " " << request.target() << " -> " << answer.status
                    << " " << answer.body.substr(0, 200);
        }

        http::response<http::string_body> response{static_cast<http::status>(answer.status),
                                                   version};
        response.set(http::field::server, "netmanager");
        response.set(http::field::content_type, answer.content_type);
        if (!answer.allow.empty()) response.set(http::field::allow, answer.allow);
        if (!answer.www_authenticate.empty())
            response.set(http::field::www_authenticate, answer.www_authenticate);
        response.keep_alive(keep_alive && !drain && !stopping_);
        response.body() = std::move(answer.body);
        response.prepare_payload();
        stream.expires_after(options_.request_timeout);
        auto [write_error, written] = co_await http::async_write(stream, response, use_tuple);
        (void)written;
        if (write_error || !response.keep_alive()) break;
    }

    boost::system::error_code ignored;
    if (drain && stream.socket().is_open()) {
        // The client may still be sending the body we refused: read it away briefly so that
        // closing does not reset the connection before the client has read our answer.
        stream.socket().shutdown(asio::socket_base::shutdown_send, ignored);
        char scratch[4096];
        for (int i = 0; i < 1024; ++i) {
            stream.expires_after(std::chrono::milliseconds(500));
            auto [read_error, got] =
                co_await stream.async_read_some(asio::buffer(scratch), use_tuple);
            (void)got;
            if (read_error) break;
        }
    }
    connections_.erase(id);
    if (stream.socket().is_open()) {
        stream.socket().shutdown(asio::socket_base::shutdown_both, ignored);
        stream.close();
    }
}

}  // namespace nm
