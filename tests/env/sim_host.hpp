#pragma once
// A simulated host for env tests: a network namespace made with `ip netns add` and a worker
// thread that lives in it. Test bodies run on that thread, so everything the code under test
// does lands in the simulated host, never in the machine's root namespace.
#include <sched.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>

namespace nm::test {

// A short prefix unique to this process (ctest runs each TEST_CASE as its own process):
// "<tag><pid>", at most 8 characters for tags of 1-2 characters.
std::string unique_prefix(const std::string& tag);

// Runs a command with /bin/sh; returns its exit status.
int sh(const std::string& command);
// Runs a command and returns its stdout.
std::string sh_out(const std::string& command);

class SimHost {
  public:
    explicit SimHost(std::string name);  // `ip netns add name`; throws on failure
    ~SimHost();                          // stops the worker, `ip netns del name`
    SimHost(const SimHost&) = delete;
    SimHost& operator=(const SimHost&) = delete;

    const std::string& name() const { return name_; }

    // Runs fn on the worker thread (inside the host) and returns its result; exceptions
    // (Catch's REQUIRE included) come back to the caller.
    template <class F>
    auto run(F fn) -> decltype(fn()) {
        std::packaged_task<decltype(fn())()> task(std::move(fn));
        auto future = task.get_future();
        post([&task] { task(); });
        return future.get();
    }

  private:
    void post(std::function<void()> job);
    void loop();

    std::string name_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    bool stop_ = false;
    bool entered_ = false;
    std::string enter_error_;
    std::thread worker_;
};

// Runs fn on a fresh thread inside the named namespace (/run/netns/<ns>) or a process's
// (/proc/<pid>/ns/net when ns starts with "/").
void run_in_netns(const std::string& ns, const std::function<void()>& fn);

// One ICMP echo from namespace `ns` to dst; true on a reply within a second.
bool ping(const std::string& ns, const std::string& dst);
// A TCP connection from namespace `from` to dst:port, served by a listener on listen_port
// (default: port) in namespace `to`; true when a message crossed it.
bool tcp_roundtrip(const std::string& from, const std::string& to, const std::string& dst, int port,
                   int listen_port = 0);

}  // namespace nm::test
