#include "node/rtt_monitor.hpp"

#include <algorithm>
#include <boost/json.hpp>

#include "core/log.hpp"
#include "core/metrics_text.hpp"
#include "tunnel/forwarder.hpp"

namespace nm {

namespace {
constexpr std::string_view subsystem = "rtt";
namespace json = boost::json;
using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;

// About four probe intervals (at their longest, +25 %) without a sample: the node ranks last.
RttEstimatorOptions estimator_options(const RttMonitorOptions& o) {
    RttEstimatorOptions e;
    if (o.probe_interval.count() > 0)
        e.stale_after = o.probe_interval * 15 / 4 + milliseconds(1000);
    return e;
}

double ms(microseconds d) {
    return static_cast<double>(d.count()) / 1000.0;
}
}  // namespace

RttMonitor::RttMonitor(Shards& shards, std::vector<Forwarder*> forwarders,
                       std::function<std::vector<Ipv4>()> peers, RttMonitorOptions options)
    : shards_(shards),
      forwarders_(std::move(forwarders)),
      peers_(std::move(peers)),
      options_(options),
      estimator_(estimator_options(options)),
      timer_(shards.context(0)) {}

milliseconds RttMonitor::tick() const {
    // Often enough to keep each node's jittered schedule, and to collect passive samples.
    const auto quarter = options_.probe_interval / 4;
    return options_.probe_interval.count() > 0
               ? std::clamp(quarter, milliseconds(100), milliseconds(1000))
               : milliseconds(1000);
}

void RttMonitor::start() {
    if (options_.probe_interval.count() > 0) {
        auto echo = IcmpEcho::open(shards_.context(0));
        if (echo) {
            echo_.emplace(std::move(*echo));
            shards_.spawn(0, receive_loop(gate_.hold()), "rtt probe receive");
        } else {
            echo_error_ = echo.error().message;
            NM_LOG(warn, subsystem) << echo_error_ << "; Closest ranks by passive samples only";
        }
    }
    shards_.spawn(0, tick_loop(gate_.hold()), "rtt tick");
    NM_LOG(info, subsystem) << "round trips to peer nodes: "
                            << (echo_ ? std::string("probes every ~") +
                                            std::to_string(options_.probe_interval.count()) +
                                            " ms over a " + echo_->kind() + " socket"
                                      : std::string("no probes"))
                            << ", passive samples from TCP handshakes";
}

void RttMonitor::stop() {
    gate_.refuse();
    timer_.cancel();
    if (echo_) echo_->close();
}

awaitable<void> RttMonitor::close() {
    stop();
    co_await gate_.close();
}

awaitable<void> RttMonitor::tick_loop(Gate::Holder /*held while it runs*/) {
    while (!gate_.closed()) {
        timer_.expires_after(tick());
        co_await timer_.async_wait();
        if (gate_.closed()) break;
        const auto now = Clock::now();
        auto peers = peers_();
        estimator_.set_peers(peers);
        if (echo_) schedule_probes(now);
        co_await collect_and_publish(now);
    }
}

void RttMonitor::schedule_probes(Clock::time_point now) {
    // Forget nodes no longer peers; a new one gets its first probe within a second.
    boost::unordered::erase_if(probes_,
                               [&](const auto& p) { return !estimator_.find(Ipv4{p.first}); });
    const auto interval = options_.probe_interval;
    for (const auto& [ip, peer] : estimator_.peers()) {
        auto [it, added] = probes_.try_emplace(ip);
        Probe& p = it->second;
        if (added) {
            std::uniform_int_distribution<int64_t> first(0,
                                                         std::min<int64_t>(interval.count(), 1000));
            p.due = now + milliseconds(first(jitter_));
        }
        if (now < p.due) continue;
        const Ipv4 node{ip};
        if (p.waiting) estimator_.probe_lost(node);
        p.sequence = next_sequence_++;
        if (auto sent = echo_->send(node, p.sequence); !sent) {
            NM_LOG(debug, subsystem) << sent.error().message;
            p.waiting = false;
        } else {
            p.waiting = true;
            p.sent = *sent;
            estimator_.probe_sent(node);
        }
        std::uniform_int_distribution<int64_t> next(interval.count() * 3 / 4,
                                                    interval.count() * 5 / 4);
        p.due = now + milliseconds(next(jitter_));
    }
}

awaitable<void> RttMonitor::receive_loop(Gate::Holder /*held while it runs*/) {
    while (!gate_.closed() && echo_) {
        auto reply = co_await echo_->receive();
        if (!reply) {
            if (!gate_.closed())
                NM_LOG(warn, subsystem) << reply.error().message << "; probes stop";
            co_return;
        }
        auto it = probes_.find(reply->from.value);
        if (it == probes_.end() || !it->second.waiting || it->second.sequence != reply->sequence)
            continue;  // late, repeated or not ours
        it->second.waiting = false;
        const auto rtt = duration_cast<microseconds>(reply->received - it->second.sent);
        if (rtt.count() >= 0)  // the wall clock may have been set back in between
            estimator_.add_sample(reply->from, rtt, RttSource::probe, Clock::now());
    }
}

awaitable<void> RttMonitor::collect_and_publish(Clock::time_point now) {
    uint64_t dropped = 0;
    for (Forwarder* f : forwarders_) {
        auto taken = co_await on_shard(f->shard(), [f] {
            return std::pair{f->take_rtt_samples(), f->rtt_samples_dropped()};
        });
        for (const RttSample& s : taken.first)
            estimator_.add_sample(s.node, microseconds(s.rtt_us), RttSource::passive, now);
        dropped += taken.second;
    }
    samples_dropped_ = dropped;
    if (!refresh_published(now)) co_return;
    // Each shard copies the estimates while this loop waits for it, so nothing writes them
    // meanwhile. (Only pointers are captured: GCC 12 destroyed a captured map twice here.)
    for (Forwarder* f : forwarders_)
        co_await on_shard(f->shard(), [f, this] { f->set_rtt(published_); });
}

bool RttMonitor::refresh_published(Clock::time_point now) {
    RttEstimates snapshot = estimator_.snapshot(now);
    if (snapshot == published_) return false;
    published_ = std::move(snapshot);
    return true;
}

json::value RttMonitor::status() const {
    const auto now = Clock::now();
    json::array peers;
    for (const auto& [ip, p] : estimator_.peers()) {
        json::object o;
        o["node_ip"] = Ipv4{ip}.to_string();
        const bool fresh = estimator_.fresh(p, now);
        o["state"] = fresh ? "measured" : p.smoothed ? "stale" : "unmeasured";
        o["rtt_ms"] = fresh ? json::value(ms(p.published)) : json::value(nullptr);
        o["smoothed_ms"] = p.smoothed ? json::value(ms(*p.smoothed)) : json::value(nullptr);
        o["last_sample_ms"] = p.smoothed ? json::value(ms(p.last_rtt)) : json::value(nullptr);
        o["age_ms"] = p.smoothed
                          ? json::value(duration_cast<milliseconds>(now - p.last_sample).count())
                          : json::value(nullptr);
        o["probes_sent"] = p.probes_sent;
        o["probe_replies"] = p.probe_replies;
        o["probes_lost"] = p.probes_lost;
        o["passive_samples"] = p.passive_samples;
        peers.push_back(std::move(o));
    }
    json::object s;
    s["probe_interval_ms"] = options_.probe_interval.count();
    s["stale_after_ms"] = estimator_.options().stale_after.count();
    s["probe_socket"] = echo_ ? json::value(echo_->kind())
                              : json::value(echo_error_.empty() ? "off" : "none: " + echo_error_);
    s["passive_samples_dropped"] = samples_dropped_;
    s["peers"] = std::move(peers);
    return s;
}

void RttMonitor::append_metrics(MetricsText& m) const {
    const auto now = Clock::now();
    auto label = [](uint32_t ip) { return "node=\"" + Ipv4{ip}.to_string() + "\""; };
    m.family("netmanager_peer_rtt_seconds", "gauge",
             "Round-trip estimate to a peer node that Closest ranks by (nodes measured lately).");
    for (const auto& [ip, p] : estimator_.peers())
        if (estimator_.fresh(p, now))
            m.sample("netmanager_peer_rtt_seconds", static_cast<double>(p.published.count()) / 1e6,
                     label(ip));
    m.family("netmanager_peer_rtt_age_seconds", "gauge",
             "Time since the last sample of a peer node.");
    for (const auto& [ip, p] : estimator_.peers())
        if (p.smoothed)
            m.sample("netmanager_peer_rtt_age_seconds",
                     std::chrono::duration<double>(now - p.last_sample).count(), label(ip));
    m.family("netmanager_peer_rtt_samples_total", "counter",
             "Round-trip samples of a peer node, by source (ICMP probe reply, TCP handshake).");
    for (const auto& [ip, p] : estimator_.peers()) {
        m.sample("netmanager_peer_rtt_samples_total", static_cast<double>(p.probe_replies),
                 label(ip) + ",source=\"probe\"");
        m.sample("netmanager_peer_rtt_samples_total", static_cast<double>(p.passive_samples),
                 label(ip) + ",source=\"passive\"");
    }
    m.family("netmanager_peer_rtt_probes_total", "counter",
             "ICMP echo probes to a peer node: sent, and lost (unanswered when the next went).");
    for (const auto& [ip, p] : estimator_.peers()) {
        m.sample("netmanager_peer_rtt_probes_total", static_cast<double>(p.probes_sent),
                 label(ip) + ",result=\"sent\"");
        m.sample("netmanager_peer_rtt_probes_total", static_cast<double>(p.probes_lost),
                 label(ip) + ",result=\"lost\"");
    }
    m.single("netmanager_rtt_samples_dropped_total", "counter",
             "Passive samples dropped because a shard's buffer was full between collections.",
             static_cast<double>(samples_dropped_));
}

}  // namespace nm
