#pragma once
// A real broker (Debian's mosquitto, on a free loopback port) and the fake cluster manager
// (fake_cluster.py), both child processes of the test, stopped by PID.
#include <boost/json/object.hpp>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "child_process.hpp"

namespace nm::testkit {

class Broker {
  public:
    // port 0: a free loopback port, kept across restarts.
    explicit Broker(std::filesystem::path dir, uint16_t port = 0);
    void start();
    void stop();
    uint16_t port() const { return port_; }
    // Publishes as an outside client (mosquitto_pub), QoS 1. True on success.
    bool publish(const std::string& topic, const std::string& payload) const;

  private:
    std::filesystem::path dir_;
    uint16_t port_;
    ChildProcess process_;
};

struct Recorded {
    std::string topic, payload;
};

class FakeCluster {
  public:
    FakeCluster(std::filesystem::path dir, uint16_t broker_port);
    // The table the fake answers from (see fake_cluster.py); read again on every request.
    void set_table(const boost::json::object& table);
    void start();  // waits until the fake has subscribed
    void stop();
    // Everything the fake saw under nodes/, oldest first.
    std::vector<Recorded> recorded() const;
    // How many recorded messages have a topic ending in suffix (and a payload containing text).
    size_t count(std::string_view topic_suffix, std::string_view text = "") const;
    // Polls until count(...) >= n.
    bool wait_count(std::string_view topic_suffix, size_t n, std::chrono::milliseconds timeout,
                    std::string_view text = "") const;

  private:
    std::filesystem::path dir_;
    uint16_t broker_port_;
    ChildProcess process_;
};

// A table-query instance in the cluster's wire form.
boost::json::object wire_instance(int number, const std::string& nsip, const std::string& host_ip,
                                  int host_port,
                                  const std::vector<std::pair<std::string, std::string>>& sips);

// Polls pred every 10 ms until it holds or timeout passes.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return pred();
}

}  // namespace nm::testkit
