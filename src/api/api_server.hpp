#pragma once
// The Node API's HTTP/1.1 server (Beast on coroutines): a TCP port and/or a unix socket,
// keep-alive, a body size limit, idle and request timeouts. Runs on one shard (0) and hands
// each request to ApiRouter.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "api/api_router.hpp"
#include "api/docker_engine.hpp"
#include "core/gate.hpp"

namespace nm {

struct ApiServerOptions {
    std::optional<asio::ip::tcp::endpoint> tcp;  // port 0: any free port (see tcp_port())
    std::string unix_socket;                     // empty: none
    std::string bearer_token;       // not empty: TCP requests must carry it (the unix socket never)
    size_t body_limit = 64 * 1024;  // larger bodies: 413
    std::chrono::milliseconds idle_timeout{30000};     // a kept-alive connection waits this long
    std::chrono::milliseconds request_timeout{10000};  // to read a body and to write an answer
    size_t max_connections = 512;  // open at once; a connection past this is closed at once
    // Called when an accept loop stops on a permanent failure (what failed): the API is gone.
    std::function<void(const std::string&)> on_fatal;
    std::string docker_socket = "/var/run/docker.sock";
    Networks networks;
};

class ApiServer {
  public:
    ApiServer(asio::any_io_executor executor, NodeControl& node, ApiServerOptions options);
    ~ApiServer();
    ApiServer(const ApiServer&) = delete;
    ApiServer& operator=(const ApiServer&) = delete;

    // Binds the listeners (a stale unix socket file is removed; a live one is an error) and
    // starts accepting. Call on the server's executor.
    Result<void> start();
    // Closes the listeners and idle connections and removes the socket file; requests in
    // progress get their answer, then their connection closes.
    void stop();
    // stop(), then resumes once every accept loop and connection has ended (idle ones close at
    // once, busy ones after their answer): then the server may be destroyed.
    awaitable<void> close();
    // Registers close() to run on `shard` when the shards stop.
    void stop_with(Shards& shards, unsigned shard = 0);

    uint16_t tcp_port() const { return tcp_port_; }
    size_t open_connections() const { return connections_.size(); }
    uint64_t refused_connections() const { return refused_; }    // past max_connections
    uint64_t accept_retries() const { return accept_retries_; }  // transient accept failures
    uint64_t unauthorized() const { return unauthorized_; }      // TCP requests answered 401
    bool accepting() const { return accepting_ > 0; }            // an accept loop runs

  private:
    struct Connection {
        bool busy = false;
        std::function<void()> close;
    };
    template <class Protocol>
    awaitable<void> accept_loop(typename Protocol::acceptor& acceptor);
    template <class Protocol>
    awaitable<void> serve(typename Protocol::socket socket);
    Result<void> listen_unix();
    Result<void> listen_tcp();

    asio::any_io_executor executor_;
    ApiServerOptions options_;
    DockerEngine docker_;
    ApiRouter router_;
    std::unique_ptr<asio::ip::tcp::acceptor> tcp_acceptor_;
    std::unique_ptr<asio::local::stream_protocol::acceptor> unix_acceptor_;
    uint16_t tcp_port_ = 0;
    bool started_ = false;
    bool stopping_ = false;
    bool own_socket_file_ = false;
    uint64_t next_connection_ = 0;
    std::map<uint64_t, Connection*> connections_;
    uint64_t refused_ = 0, accept_retries_ = 0, unauthorized_ = 0;
    int accepting_ = 0;
    Gate gate_;  // held by the accept loops and every connection
};

}  // namespace nm
