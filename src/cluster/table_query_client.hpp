#pragma once
// The tunnel's Resolver backed by the cluster: tablequery/request over MQTT, one request per
// key however many callers wait, a timeout, brief negative caching, job update subscriptions
// and dropping interest in idle jobs. Lives on shard 0 with its ClusterLink.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "cluster/cluster_link.hpp"
#include "core/gate.hpp"
#include "core/log_every.hpp"
#include "table/resolver.hpp"

namespace nm {

class MetricsText;

// The reference's timings (protocol.md "Cluster link"): a query waits 5 s; a job with no
// lookup and no use by the data path for 10 s, and no instance here, is dropped.
struct TableQueryOptions {
    std::chrono::milliseconds timeout{5000};       // no answer by then: Errc::timeout
    std::chrono::milliseconds negative_ttl{5000};  // "no such service" remembered this long
    std::chrono::milliseconds idle_after{10000};   // unused this long and not local: drop
    std::chrono::milliseconds sweep_every{2000};  // how often use is collected and idleness checked
    // Queries published and not yet answered, at most, for one asker (a sending namespace or
    // node, the name service). More fail at once (Errc::exhausted), so a flood of unknown
    // addresses or names costs the cluster a bounded load. The data path's queries in all are
    // bounded before they reach shard 0, by the shards' Budget (DataPlaneOptions::table_queries).
    size_t max_in_flight_per_asker = 16;
};

class TableQueryClient final : public Resolver {
  public:
    // Writes all entries of one job into the table, replacing what it had (empty: remove);
    // TableWriter::replace_job fits. An error (the table refused the entries) fails the
    // queries waiting for them.
    using ReplaceJob =
        std::function<Result<void>(const std::string& job, std::vector<TableEntry> entries)>;
    // True while an instance of the job runs on this node (its interest is never dropped).
    using IsLocal = std::function<bool(const std::string& job)>;
    // The jobs the data path used since the last call (asked once per sweep, on shard 0).
    using UsedJobs = std::function<awaitable<std::vector<std::string>>()>;

    TableQueryClient(ClusterLink& link, ReplaceJob replace_job, IsLocal is_local,
                     TableQueryOptions options = {});
    // A writer that returns nothing (it reports its own errors) is accepted as well.
    template <class F>
    requires std::is_void_v<std::invoke_result_t<F&, const std::string&, std::vector<TableEntry>>>
    TableQueryClient(ClusterLink& link, F replace_job, IsLocal is_local,
                     TableQueryOptions options = {})
        : TableQueryClient(link,
                           ReplaceJob([f = std::move(replace_job)](
                                          const std::string& job,
                                          std::vector<TableEntry> entries) mutable -> Result<void> {
                               f(job, std::move(entries));
                               return {};
                           }),
                           std::move(is_local), options) {}
    ~TableQueryClient() override;
    TableQueryClient(const TableQueryClient&) = delete;
    TableQueryClient& operator=(const TableQueryClient&) = delete;

    // Hooks into the link and starts the idle sweep. Call on the link's executor.
    void start();
    // Fails every waiting query (Errc::unavailable) and stops the sweep.
    void stop();
    // stop(), then resumes once every coroutine of the client has left it.
    awaitable<void> close();

    // By ServiceIP (or namespace IP): tablequery/request {"sname":"","sip":"<ip>"}.
    awaitable<Result<std::vector<TableEntry>>> resolve(Ipv4 address) override;
    // By IPv6 ServiceIP: {"sname":"","sip":"fdff:2000::3"}.
    awaitable<Result<std::vector<TableEntry>>> resolve(const Ipv6& address) override;
    // Counted against the asker's cap (TableQueryOptions::max_in_flight_per_asker).
    awaitable<Result<std::vector<TableEntry>>> resolve(Ipv4 address, Ipv4 asker) override;
    awaitable<Result<std::vector<TableEntry>>> resolve(const Ipv6& address, Ipv4 asker) override;
    // By job name: tablequery/request {"sname":"<job>","sip":""}; counted against `asker`'s cap
    // unless it is 0.0.0.0.
    awaitable<Result<std::vector<TableEntry>>> resolve_job(std::string job, Ipv4 asker = {});

    // The data path reports use of a job so its interest is kept.
    void note_used(const std::string& job);
    // Where each sweep learns the data path's use (see UsedJobs); without it only lookups count.
    void set_used_jobs(UsedJobs used_jobs) { used_jobs_ = std::move(used_jobs); }
    // Jobs currently of interest (subscribed to their updates).
    std::vector<std::string> interested_jobs() const;

    struct Stats {
        uint64_t requests = 0;           // tablequery/request publishes
        uint64_t answers = 0;            // results that completed a query
        uint64_t timeouts = 0;           // queries that got no answer in time
        uint64_t negative_hits = 0;      // resolves answered from the negative cache
        uint64_t coalesced = 0;          // resolves that joined a query already in flight
        uint64_t malformed = 0;          // results ignored as malformed
        uint64_t pending = 0;            // instances skipped as not yet running (null addresses)
        uint64_t invalid = 0;            // instances skipped for a bad value
        uint64_t rejected = 0;           // results the table refused
        uint64_t refreshes = 0;          // updates_available notices acted on
        uint64_t dropped = 0;            // jobs whose interest was dropped
        uint64_t refused = 0;            // resolves failed at once: their asker's cap was spent
        double latency_seconds_sum = 0;  // request to answer, per answered query
        uint64_t latency_count = 0;
    };
    const Stats& stats() const { return stats_; }
    // Appends the counters above in Prometheus text format (netmanager_table_query_*).
    void append_metrics(MetricsText& out) const;

  private:
    struct Query;
    using Clock = std::chrono::steady_clock;
    awaitable<Result<std::vector<TableEntry>>> query(std::string key, std::string payload,
                                                     Ipv4 asker = {});
    // Removes a query from in_flight_ (and its asker's count); false if `q` is not the one there.
    bool forget(const std::string& key, const Query* q);
    void handle_result(std::string_view payload);
    void handle_job_update(const std::string& job);
    void complete(const std::string& key, const std::vector<TableEntry>& entries);
    void complete_with_error(const std::string& key, const Error& error);
    void take_interest(const std::string& job);
    void drop_interest(const std::string& job);
    awaitable<void> sweep_loop(Gate::Holder hold);

    ClusterLink& link_;
    ReplaceJob replace_job_;
    IsLocal is_local_;
    UsedJobs used_jobs_;
    TableQueryOptions options_;
    std::unordered_map<std::string, std::shared_ptr<Query>> in_flight_;  // key: sip or job
    std::unordered_map<std::string, Clock::time_point> negative_;        // key -> expiry
    std::unordered_map<Ipv4, size_t> asked_;  // asker -> its queries in flight
    LogEvery log_every_;
    std::unordered_map<std::string, Clock::time_point> interest_;  // job -> last use
    SteadyTimer sweep_timer_;
    Stats stats_;
    Gate gate_;  // held by every query, refresh and the sweep
};

}  // namespace nm
