#pragma once
// Named network namespaces the iproute2 way: /run/netns/<name> is a bind mount of the
// namespace, and /run/netns itself a shared mount point, so `ip netns exec <name>` and
// `ip -n <name>` work on them and other mount namespaces see them.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace nm {

inline constexpr const char* netns_run_dir = "/run/netns";
// /run/netns/<name>, and the namespace of a process: /proc/<pid>/ns/net.
std::string named_netns_path(const std::string& name);
std::string pid_netns_path(int pid);

// An owned file descriptor (closed on destruction).
class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(other.release()) {}
    Fd& operator=(Fd&& other) noexcept;
    ~Fd();
    int get() const { return fd_; }
    int release() {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }
    explicit operator bool() const { return fd_ >= 0; }

  private:
    int fd_ = -1;
};

// Creates a new, empty network namespace named `name` and returns a descriptor of it.
// Errc::exists when the name is taken. The calling thread stays in its own namespace.
Result<Fd> create_named_netns(const std::string& name);
// Unmounts and removes /run/netns/<name>; the namespace dies with its last user.
Result<void> delete_named_netns(const std::string& name);
// A descriptor of /run/netns/<name> (not_found if absent).
Result<Fd> open_named_netns(const std::string& name);
// A descriptor of a process's namespace; not_found when the process is gone.
Result<Fd> open_pid_netns(int pid);
// Names in /run/netns.
std::vector<std::string> list_named_netns();
// The inode that identifies the namespace behind a descriptor (0 when fstat fails), and behind
// a path such as /run/netns/<name> or /proc/<pid>/ns/net (0 when it does not exist).
uint64_t netns_inode(int netns_fd);
uint64_t netns_inode(const std::string& path);
// True when some process's network namespace is the one with this inode (scans /proc).
bool netns_has_process(uint64_t inode);

// Moves the calling thread into a namespace for its lifetime and back afterwards. A thread
// that cannot return to its namespace would act on the wrong network: that aborts.
class NetnsSwitch {
  public:
    static Result<NetnsSwitch> enter(int netns_fd);
    NetnsSwitch(NetnsSwitch&& other) noexcept : home_(std::move(other.home_)) {}
    NetnsSwitch& operator=(NetnsSwitch&&) = delete;
    ~NetnsSwitch();

  private:
    explicit NetnsSwitch(Fd home) : home_(std::move(home)) {}
    Fd home_;
};

// Runs fn on a thread of its own inside the namespace and waits for it; an exception fn throws
// is rethrown here. Fails without running fn when the thread cannot enter the namespace.
Result<void> run_in_netns(int netns_fd, const std::function<void()>& fn);

}  // namespace nm
