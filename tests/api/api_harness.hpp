#pragma once
// An ApiServer on one shard, on a loopback port and a unix socket in a temp dir, driven with
// the real curl.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/parse.hpp>
#include <fstream>

#include "api/api_server.hpp"
#include "child_process.hpp"
#include "fake_node.hpp"

namespace nm::testkit {

struct HttpAnswer {
    int status = 0;
    std::string body;
    boost::json::value json() const {
        boost::system::error_code ec;
        auto v = boost::json::parse(body, ec);
        return ec ? boost::json::value() : v;
    }
    // The "error" text of an error answer ("" when there is none).
    std::string error() const {
        auto v = json();
        if (!v.is_object() || !v.as_object().contains("error") || !v.at("error").is_string())
            return "";
        return std::string(v.at("error").as_string());
    }
};

class ApiHarness {
  public:
    explicit ApiHarness(const std::string& name, ApiServerOptions options = {}) : dir_(name) {
        options.tcp = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0);
        // The tests' own plan (172.x), given explicitly: the defaults are the reference's 10.x.
        options.networks = {*Cidr::parse("172.16.0.0/12"), *Cidr::parse("172.30.0.0/16")};
        if (options.unix_socket.empty())
            options.unix_socket = (dir_.path() / "run" / "api.sock").string();
        if (options.docker_socket == "/var/run/docker.sock")
            options.docker_socket =
                (dir_.path() / "docker.sock").string();  // nothing listens there
        socket_ = options.unix_socket;
        shards_.start();
        auto started = asio::co_spawn(
                           shards_.context(0),
                           [&]() -> awaitable<Result<void>> {
                               server_ =
                                   std::make_unique<ApiServer>(shards_.executor(0), node_, options);
                               co_return server_->start();
                           },
                           asio::use_future)
                           .get();
        if (!started) throw std::runtime_error(started.error().message);
        server_->stop_with(shards_);
    }
    ~ApiHarness() { stop(); }
    void stop() {
        shards_.stop();
        shards_.join();
        server_.reset();
    }

    // One request with curl over the unix socket (or TCP when tcp is set).
    HttpAnswer request(const std::string& method, const std::string& path,
                       const std::string& body = "", bool tcp = false,
                       std::vector<std::string> extra = {}) {
        std::vector<std::string> argv = {"/usr/bin/curl", "-s", "-S", "--max-time", "10", "-X",
                                         method};
        if (!body.empty()) {
            auto file = dir_.path() / ("body-" + std::to_string(counter_++));
            std::ofstream(file, std::ios::binary) << body;
            argv.insert(argv.end(), {"-H", "Content-Type: application/json", "--data-binary",
                                     "@" + file.string()});
        }
        for (auto& e : extra) argv.push_back(e);
        argv.insert(argv.end(), {"-w", "\n%{http_code}"});
        if (tcp) {
            argv.push_back("http://127.0.0.1:" + std::to_string(server_->tcp_port()) + path);
        } else {
            argv.insert(argv.end(), {"--unix-socket", socket_, "http://agent" + path});
        }
        auto out = run_capture(argv);
        HttpAnswer answer;
        auto newline = out.out.rfind('\n');
        if (newline == std::string::npos) return answer;
        answer.status = std::atoi(out.out.c_str() + newline + 1);
        answer.body = out.out.substr(0, newline);
        return answer;
    }
    HttpAnswer post(const std::string& path, const std::string& body) {
        return request("POST", path, body);
    }

    FakeNode& node() { return node_; }
    ApiServer& server() { return *server_; }
    const std::string& socket_path() const { return socket_; }
    const TempDir& dir() const { return dir_; }

  private:
    TempDir dir_;
    FakeNode node_;
    Shards shards_{{.count = 1, .pin = false}};
    std::unique_ptr<ApiServer> server_;
    std::string socket_;
    int counter_ = 0;
};

}  // namespace nm::testkit
