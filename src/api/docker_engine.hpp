#pragma once
// The Docker engine's API on its unix socket, for the seed's /docker/deploy: a container id
// becomes the pid whose network namespace the instance joins.
#include <sys/types.h>

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <string>

#include "core/error.hpp"
#include "core/shard.hpp"

namespace nm {

class DockerEngine {
  public:
    explicit DockerEngine(std::string socket_path = "/var/run/docker.sock",
                          std::chrono::milliseconds timeout = std::chrono::seconds(5));

    // GET /containers/<id>/json -> State.Pid. Errors: unavailable (no engine on the socket),
    // not_found (no such container), conflict (not running), invalid_argument (bad answer).
    awaitable<Result<pid_t>> container_pid(std::string container_id);

    const std::string& socket_path() const { return socket_path_; }

  private:
    std::string socket_path_;
    std::chrono::milliseconds timeout_;
};

}  // namespace nm
