#pragma once
// Network namespaces a test creates for itself (the iproute2 way, so `ip -n NAME` works on them)
// and removes, by exact name, also when the test fails.
#include <string>

namespace nm::test {

// Runs a shell command; returns its exit status.
int run(const std::string& command);

class TestNetns {
  public:
    // "<prefix>-<pid>": unique among tests running in parallel.
    explicit TestNetns(const std::string& prefix);
    ~TestNetns();
    TestNetns(const TestNetns&) = delete;
    TestNetns& operator=(const TestNetns&) = delete;
    const std::string& name() const { return name_; }
    // Runs `ip -n NAME <args>` and throws if it fails.
    void ip(const std::string& args) const;

  private:
    std::string name_;
};

// Moves the calling thread into a namespace until destroyed. Sockets and TUN devices created
// meanwhile stay in it.
class EnterNetns {
  public:
    explicit EnterNetns(const TestNetns& ns);
    ~EnterNetns();
    EnterNetns(const EnterNetns&) = delete;
    EnterNetns& operator=(const EnterNetns&) = delete;

  private:
    int previous_;
};

// A counter from /proc/thread-self/net/snmp ("Tcp", "InCsumErrors") of the calling thread's
// namespace.
long long snmp_counter(const std::string& group, const std::string& name);

}  // namespace nm::test
