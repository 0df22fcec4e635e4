#pragma once
// Test processes we start ourselves and stop by PID (never by name).
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace nm::testkit {

class ChildProcess {
  public:
    ChildProcess() = default;
    // Starts argv[0] (a path) with stdout/stderr appended to log_file (empty: inherited).
    explicit ChildProcess(std::vector<std::string> argv, const std::string& log_file = "");
    ~ChildProcess();
    ChildProcess(ChildProcess&& other) noexcept;
    ChildProcess& operator=(ChildProcess&& other) noexcept;

    pid_t pid() const { return pid_; }
    bool running();
    // SIGTERM, then SIGKILL after a grace period; reaps the child.
    void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));

  private:
    pid_t pid_ = -1;
};

// Runs a command to completion; returns its exit status (-1 when it could not run).
int run_command(const std::vector<std::string>& argv);

// Runs a command to completion and returns its exit status and standard output.
struct CommandOutput {
    int status = -1;
    std::string out;
};
CommandOutput run_capture(const std::vector<std::string>& argv);

// A TCP port on 127.0.0.1 that was free a moment ago.
uint16_t free_loopback_port();
// Polls until something accepts TCP connections on 127.0.0.1:port.
bool wait_for_port(uint16_t port, std::chrono::milliseconds timeout);

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
  public:
    explicit TempDir(const std::string& prefix = "nm-test");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

}  // namespace nm::testkit
