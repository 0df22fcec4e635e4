#pragma once
// Measures the round trips to peer nodes that Closest ServiceIPs rank by (docs/closest.md), on
// shard 0: an ICMP echo probe to each peer node a few times a minute (jittered), the passive
// samples every shard's data path took from TCP handshakes, one RttEstimator, and its snapshot
// sent to every shard's balancer when it changes.
#include <boost/json/value.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/async.hpp"
#include "core/gate.hpp"
#include "core/shard.hpp"
#include "tunnel/icmp_echo.hpp"
#include "tunnel/rtt_estimator.hpp"

namespace nm {

class Forwarder;
class MetricsText;

struct RttMonitorOptions {
    // Mean time between probes to one node (each one jittered by +-25 %); 0: no probes, only
    // passive samples.
    std::chrono::milliseconds probe_interval{15'000};
};

class RttMonitor {
  public:
    using Clock = RttEstimator::Clock;
    // peers: the nodes to measure now (this node's peers in the table), asked on every tick.
    RttMonitor(Shards& shards, std::vector<Forwarder*> forwarders,
               std::function<std::vector<Ipv4>()> peers, RttMonitorOptions options);
    // On shard 0: opens the probe socket and spawns the loops there.
    void start();
    // Ends the loops (they hold the gate while they run).
    void stop();
    // stop(), then resumes once both loops have ended.
    awaitable<void> close();

    boost::json::value status() const;
    void append_metrics(MetricsText& m) const;
    const RttEstimator& estimator() const { return estimator_; }

  private:
    struct Probe {
        Clock::time_point due{};
        std::chrono::system_clock::time_point sent{};  // the clock of the socket's timestamps
        uint16_t sequence = 0;
        bool waiting = false;  // sent and not yet answered
    };
    awaitable<void> tick_loop(Gate::Holder hold);
    awaitable<void> receive_loop(Gate::Holder hold);
    void schedule_probes(Clock::time_point now);
    awaitable<void> collect_and_publish(Clock::time_point now);
    // Takes the estimator's snapshot; whether it differs from what the shards have.
    bool refresh_published(Clock::time_point now);
    std::chrono::milliseconds tick() const;

    Shards& shards_;
    std::vector<Forwarder*> forwarders_;
    std::function<std::vector<Ipv4>()> peers_;
    RttMonitorOptions options_;
    RttEstimator estimator_;
    std::optional<IcmpEcho> echo_;
    std::string echo_error_;
    boost::unordered_flat_map<uint32_t, Probe> probes_;
    uint16_t next_sequence_ = 1;
    uint64_t samples_dropped_ = 0;
    RttEstimates published_;
    std::minstd_rand jitter_{std::random_device{}()};
    SteadyTimer timer_;  // the tick, on shard 0
    Gate gate_;          // held by both loops
};

}  // namespace nm
