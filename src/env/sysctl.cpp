#include "env/sysctl.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace nm {
namespace {

// "net.ipv4.conf.<if>.rp_filter" -> "/proc/sys/net/ipv4/conf/<if>/rp_filter"; an interface name
// may contain dots, so the conf/neigh forms are split around it.
std::string path_of(const std::string& key) {
    for (std::string head :
         {"net.ipv4.conf.", "net.ipv6.conf.", "net.ipv4.neigh.", "net.ipv6.neigh."}) {
        if (key.rfind(head, 0) != 0) continue;
        auto last = key.rfind('.');
        if (last <= head.size()) break;
        std::string dir = head;
        for (char& c : dir)
            if (c == '.') c = '/';
        return "/proc/sys/" + dir + key.substr(head.size(), last - head.size()) + "/" +
               key.substr(last + 1);
    }
    std::string path = key;
    for (char& c : path)
        if (c == '.') c = '/';
    return "/proc/sys/" + path;
}

}  // namespace

std::string rp_filter_key(const std::string& ifname) {
    return "net.ipv4.conf." + ifname + ".rp_filter";
}

Result<std::string> read_sysctl(const std::string& key) {
    std::string path = path_of(key);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail_errno("sysctl " + key + ": open " + path, errno);
    char buf[256];
    ssize_t n = ::read(fd, buf, sizeof buf);
    int err = errno;
    ::close(fd);
    if (n < 0) return fail_errno("sysctl " + key + ": read", err);
    std::string value(buf, static_cast<size_t>(n));
    while (!value.empty() && (value.back() == '\n' || value.back() == ' ')) value.pop_back();
    return value;
}

Result<void> write_sysctl(const std::string& key, const std::string& value) {
    std::string path = path_of(key);
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail_errno("sysctl " + key + ": open " + path, errno);
    ssize_t n = ::write(fd, value.data(), value.size());
    int err = errno;
    ::close(fd);
    if (n < 0) return fail_errno("sysctl " + key + "=" + value, err);
    return {};
}

}  // namespace nm
