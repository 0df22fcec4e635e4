// netmanager: flags, wiring, signals, shutdown.
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "core/config.hpp"
#include "core/log.hpp"
#include "core/shard.hpp"

namespace {

constexpr const char* version = "netmanager 0.1.0";

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

}  // namespace

int main(int argc, char** argv) {
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
        std::cout << version << "\n";
        return 0;
    }
    nm::Config& cfg = cli->config;
    nm::set_log_level(cfg.log_level);
    if (!cfg.netns.empty()) {
        if (auto r = enter_netns(cfg.netns); !r) {
            std::fprintf(stderr, "netmanager: %s\n", r.error().message.c_str());
            return 1;
        }
    }

    nm::Shards shards(cfg.shards);
    shards.stop_on_signals();
    NM_LOG(info, "main") << version << " starting with " << shards.count() << " shards";
    shards.start();
    shards.join();
    NM_LOG(info, "main") << "stopped";
    return 0;
}
