#include "env/netns.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <thread>

#include "core/log.hpp"

namespace nm {

Fd& Fd::operator=(Fd&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = other.release();
    }
    return *this;
}

Fd::~Fd() {
    if (fd_ >= 0) ::close(fd_);
}

std::string named_netns_path(const std::string& name) {
    return std::string(netns_run_dir) + "/" + name;
}

std::string pid_netns_path(int pid) {
    return "/proc/" + std::to_string(pid) + "/ns/net";
}

namespace {

Result<void> check_name(const std::string& name) {
    if (name.empty() || name.size() > 200 || name == "." || name == ".." ||
        name.find('/') != std::string::npos)
        return fail(Errc::invalid_argument, "invalid namespace name \"" + name + "\"");
    return {};
}

// /run/netns as a shared mount point, as iproute2 makes it: a namespace mounted there later
// is then visible in every mount namespace that shares it.
Result<void> prepare_run_dir() {
    if (::mkdir(netns_run_dir, 0755) != 0 && errno != EEXIST)
        return fail_errno(std::string("mkdir ") + netns_run_dir, errno);
    if (::mount("", netns_run_dir, "none", MS_SHARED | MS_REC, nullptr) == 0) return {};
    if (errno != EINVAL)
        return fail_errno(std::string("mount --make-shared ") + netns_run_dir, errno);
    // Not a mount point yet: bind it onto itself, then share it.
    if (::mount(netns_run_dir, netns_run_dir, "none", MS_BIND | MS_REC, nullptr) != 0)
        return fail_errno(std::string("mount --bind ") + netns_run_dir, errno);
    if (::mount("", netns_run_dir, "none", MS_SHARED | MS_REC, nullptr) != 0)
        return fail_errno(std::string("mount --make-shared ") + netns_run_dir, errno);
    return {};
}

Result<Fd> open_current_netns() {
    int fd = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail_errno("open /proc/thread-self/ns/net", errno);
    return Fd(fd);
}

}  // namespace

Result<NetnsSwitch> NetnsSwitch::enter(int netns_fd) {
    auto home = open_current_netns();
    if (!home) return tl::unexpected(home.error());
    if (::setns(netns_fd, CLONE_NEWNET) != 0)
        return fail_errno("setns into network namespace", errno);
    return NetnsSwitch(std::move(*home));
}

NetnsSwitch::~NetnsSwitch() {
    if (!home_) return;
    if (::setns(home_.get(), CLONE_NEWNET) != 0) {
        NM_LOG(error, "env") << "cannot return to the thread's network namespace: "
                             << std::strerror(errno)
                             << "; aborting rather than act on the wrong network";
        std::abort();
    }
}

Result<void> run_in_netns(int netns_fd, const std::function<void()>& fn) {
    Result<void> entered;
    std::exception_ptr error;
    std::thread([&] {
        auto in = NetnsSwitch::enter(netns_fd);
        if (!in) {
            entered = tl::unexpected(in.error());
            return;
        }
        try {
            fn();
        } catch (...) {
            error = std::current_exception();
        }
    }).join();
    if (error) std::rethrow_exception(error);
    return entered;
}

Result<Fd> create_named_netns(const std::string& name) {
    if (auto r = check_name(name); !r) return tl::unexpected(r.error());
    static bool run_dir_ready = false;  // once per process, as the mount state persists
    if (!run_dir_ready) {
        if (auto r = prepare_run_dir(); !r) return tl::unexpected(r.error());
        run_dir_ready = true;
    }
    const std::string path = named_netns_path(name);
    int placeholder = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (placeholder < 0) {
        if (errno == EEXIST)
            return fail(Errc::exists,
                        "network namespace \"" + name + "\" already exists (" + path + ")");
        return fail_errno("create " + path, errno);
    }
    ::close(placeholder);

    auto home = open_current_netns();
    if (!home) {
        ::unlink(path.c_str());
        return tl::unexpected(home.error());
    }
    // The new namespace lives on this thread only until the bind mount pins it; then the
    // thread goes home.
    if (::unshare(CLONE_NEWNET) != 0) {
        int err = errno;
        ::unlink(path.c_str());
        return fail_errno("unshare network namespace for \"" + name + "\"", err);
    }
    int mount_err = 0;
    if (::mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0)
        mount_err = errno;
    int fd = mount_err ? -1 : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    int open_err = errno;
    if (::setns(home->get(), CLONE_NEWNET) != 0) {
        NM_LOG(error, "env") << "cannot return to the thread's network namespace: "
                             << std::strerror(errno)
                             << "; aborting rather than act on the wrong network";
        std::abort();
    }
    if (mount_err) {
        ::unlink(path.c_str());
        return fail_errno("mount --bind network namespace onto " + path, mount_err);
    }
    if (fd < 0) {
        ::umount2(path.c_str(), MNT_DETACH);
        ::unlink(path.c_str());
        return fail_errno("open " + path, open_err);
    }
    return Fd(fd);
}

Result<void> delete_named_netns(const std::string& name) {
    if (auto r = check_name(name); !r) return tl::unexpected(r.error());
    const std::string path = named_netns_path(name);
    if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL) {
        if (errno == ENOENT)
            return fail(Errc::not_found, "network namespace \"" + name + "\" does not exist");
        return fail_errno("umount " + path, errno);
    }
    if (::unlink(path.c_str()) != 0) {
        if (errno == ENOENT)
            return fail(Errc::not_found, "network namespace \"" + name + "\" does not exist");
        return fail_errno("remove " + path, errno);
    }
    return {};
}

Result<Fd> open_named_netns(const std::string& name) {
    if (auto r = check_name(name); !r) return tl::unexpected(r.error());
    const std::string path = named_netns_path(name);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return fail(Errc::not_found, "network namespace \"" + name + "\" does not exist");
        return fail_errno("open " + path, errno);
    }
    return Fd(fd);
}

Result<Fd> open_pid_netns(int pid) {
    if (pid <= 0) return fail(Errc::invalid_argument, "invalid pid " + std::to_string(pid));
    const std::string path = pid_netns_path(pid);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ESRCH)
            return fail(Errc::not_found, "process " + std::to_string(pid) +
                                             " does not exist (it may have exited): no " + path);
        return fail_errno("open " + path, errno);
    }
    return Fd(fd);
}

std::vector<std::string> list_named_netns() {
    std::vector<std::string> names;
    DIR* dir = ::opendir(netns_run_dir);
    if (!dir) return names;
    while (dirent* e = ::readdir(dir)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(std::move(n));
    }
    ::closedir(dir);
    return names;
}

uint64_t netns_inode(int netns_fd) {
    struct stat st {};
    return ::fstat(netns_fd, &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
}

uint64_t netns_inode(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
}

bool netns_has_process(uint64_t inode) {
    if (inode == 0) return false;
    DIR* dir = ::opendir("/proc");
    if (!dir) return false;
    bool found = false;
    while (dirent* e = ::readdir(dir)) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        if (netns_inode("/proc/" + std::string(e->d_name) + "/ns/net") == inode) {
            found = true;
            break;
        }
    }
    ::closedir(dir);
    return found;
}

}  // namespace nm
