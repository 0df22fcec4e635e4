#include "test_netns.hpp"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace nm::test {

int run(const std::string& command) {
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TestNetns::TestNetns(const std::string& prefix) : name_(prefix + "-" + std::to_string(getpid())) {
    if (run("ip netns add " + name_) != 0)
        throw std::runtime_error("ip netns add " + name_ + " failed");
    ip("link set lo up");
}

TestNetns::~TestNetns() {
    run("ip netns del " + name_ + " 2>/dev/null");
}

void TestNetns::ip(const std::string& args) const {
    if (run("ip -n " + name_ + " " + args) != 0)
        throw std::runtime_error("ip -n " + name_ + " " + args + " failed");
}

EnterNetns::EnterNetns(const TestNetns& ns) {
    previous_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    const int target = ::open(("/run/netns/" + ns.name()).c_str(), O_RDONLY | O_CLOEXEC);
    if (previous_ < 0 || target < 0 || ::setns(target, CLONE_NEWNET) != 0) {
        if (target >= 0) ::close(target);
        throw std::runtime_error("cannot enter namespace " + ns.name());
    }
    ::close(target);
}

EnterNetns::~EnterNetns() {
    if (::setns(previous_, CLONE_NEWNET) != 0) std::abort();  // never leave a thread astray
    ::close(previous_);
}

long long snmp_counter(const std::string& group, const std::string& name) {
    std::ifstream in("/proc/thread-self/net/snmp");
    std::string line, names;
    while (std::getline(in, line)) {
        if (line.rfind(group + ": ", 0) != 0) continue;
        if (names.empty()) {
            names = line;
            continue;
        }
        std::istringstream n(names), v(line);
        std::string key, value;
        while (n >> key && v >> value)
            if (key == name) return std::stoll(value);
    }
    return -1;
}

}  // namespace nm::test
