// netmanager: flags, wiring, signals, shutdown.
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>

#include "api/api_server.hpp"
#include "api/api_token.hpp"
#include "cli/subcommands.hpp"
#include "cli/version.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "core/shard.hpp"
#include "node/node.hpp"

namespace {

// Joins /run/netns/NAME before any thread exists, so every thread lives there.
nm::Result<void> enter_netns(const std::string& name) {
    std::string path = name.find('/') == std::string::npos ? "/run/netns/" + name : name;
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return nm::fail_errno("cannot open network namespace " + path, errno);
    int rc = setns(fd, CLONE_NEWNET);
    int err = errno;
    close(fd);
    if (rc != 0) return nm::fail_errno("cannot enter network namespace " + path, err);
    return {};
}

void fail_start(nm::Shards& shards, std::atomic<int>& exit_code, const std::string& what) {
    NM_LOG(error, "main") << what;
    exit_code = 1;
    shards.stop();
}

// On shard 0: the API first (it answers 409 until the node is registered), then the node.
nm::awaitable<void> start_agent(nm::Shards& shards, nm::Node& node, nm::Config& cfg,
                                std::unique_ptr<nm::ApiServer>& api, std::atomic<int>& exit_code) {
    NM_LOG(info, "main") << "netmanager " << nm::version() << " starting with " << shards.count()
                         << " shards";
    // Like the reference agent: without a TCP port, the API listens on its unix socket.
    if (!cfg.api_port && cfg.api_socket.empty()) {
        cfg.api_socket = nm::default_api_socket;
        ::mkdir("/etc/netmanager", 0755);
    }
    nm::ApiServerOptions options;
    if (cfg.api_port) {
        auto address = nm::asio::ip::make_address(cfg.api_address);  // checked by parse_cli
        options.tcp = nm::asio::ip::tcp::endpoint(address, cfg.api_port);
        if (!cfg.api_token_file.empty()) {
            auto token = nm::read_api_token(cfg.api_token_file);
            if (!token) co_return fail_start(shards, exit_code, token.error().message);
            options.bearer_token = std::move(*token);
        } else if (!address.is_loopback()) {
            NM_LOG(warn, "main") << "the node API listens on " << cfg.api_address << ":"
                                 << cfg.api_port
                                 << " without a token: anyone who reaches that address can "
                                    "deploy; give --api-token-file";
        }
    }
    options.unix_socket = cfg.api_socket;
    options.networks = cfg.networks;
    options.max_connections = cfg.api_max_connections;
    options.idle_timeout = std::chrono::milliseconds(cfg.api_idle_timeout_ms);
    options.on_fatal = [all = &shards, code = &exit_code](const std::string& what) {
        fail_start(*all, *code, what + "; the agent stops");
    };
    api = std::make_unique<nm::ApiServer>(shards.executor(0), node, options);
    if (auto r = api->start(); !r)
        co_return fail_start(shards, exit_code, "node API: " + r.error().message);
    api->stop_with(shards, 0);
    auto started = co_await node.start();
    if (!started) co_return fail_start(shards, exit_code, started.error().message);
}

}  // namespace

int main(int argc, char** argv) {
    if (auto code = nm::run_subcommand(argc, argv)) return *code;
    auto cli = nm::parse_cli(argc, argv);
    if (!cli) {
        std::fprintf(stderr, "netmanager: %s\n", cli.error().message.c_str());
        return 2;
    }
    if (cli->action == nm::CliAction::help) {
        std::cout << nm::usage();
        return 0;
    }
    if (cli->action == nm::CliAction::version) {
        std::cout << "netmanager " << nm::version() << "\n";
        return 0;
    }
    nm::Config& cfg = cli->config;
    if (!cfg.log_file.empty()) {
        if (auto r = nm::log_to_file(cfg.log_file); !r) {
            std::fprintf(stderr, "netmanager: %s\n", r.error().message.c_str());
            return 1;
        }
    }
    nm::set_log_level(cfg.log_level);
    if (!cfg.netns.empty()) {
        if (auto r = enter_netns(cfg.netns); !r) {
            std::fprintf(stderr, "netmanager: %s\n", r.error().message.c_str());
            return 1;
        }
    }

    nm::Shards shards({.count = cfg.shards, .cpus = cfg.cpus});
    shards.stop_on_signals();
    nm::Node node(shards, cfg);
    std::unique_ptr<nm::ApiServer> api;
    std::atomic<int> exit_code{0};

    node.on_fatal([&](const std::string& what) {
        fail_start(shards, exit_code, "data path failed (" + what + "); the agent stops");
    });
    shards.spawn(0, start_agent(shards, node, cfg, api, exit_code), "startup");

    shards.start();
    shards.join();
    NM_LOG(info, "main") << "stopped";
    return exit_code;
}
