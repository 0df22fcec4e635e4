#include "cluster/table_query_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <unordered_set>

#include "core/log.hpp"
#include "core/metrics_text.hpp"
#include "core/wakeup.hpp"

namespace nm {

namespace {
constexpr std::string_view subsystem = "tablequery";
}

struct TableQueryClient::Query {
    explicit Query(const asio::any_io_executor& ex) : done(ex) {}
    Broadcast done;  // the answer or an error is in
    std::optional<std::vector<TableEntry>> answer;
    std::optional<Error> error;
    Clock::time_point sent;
    Ipv4 asker;  // whose packet made it be published
};

bool TableQueryClient::forget(const std::string& key, const Query* q) {
    auto it = in_flight_.find(key);
    if (it == in_flight_.end() || (q && it->second.get() != q)) return false;
    if (auto a = asked_.find(it->second->asker); a != asked_.end() && --a->second == 0)
        asked_.erase(a);
    in_flight_.erase(it);
    // A flood's keys are gone: give their buckets back.
    if (in_flight_.empty()) in_flight_ = {};
    if (asked_.empty()) asked_ = {};
    return true;
}

TableQueryClient::TableQueryClient(ClusterLink& link, ReplaceJob replace_job, IsLocal is_local,
                                   TableQueryOptions options)
    : link_(link),
      replace_job_(std::move(replace_job)),
      is_local_(std::move(is_local)),
      options_(options),
      sweep_timer_(link_.mqtt().executor()) {}

TableQueryClient::~TableQueryClient() = default;

void TableQueryClient::start() {
    link_.on_table_result([this](std::string_view payload) { handle_result(payload); });
    link_.on_job_update([this](const std::string& job) { handle_job_update(job); });
    asio::co_spawn(link_.mqtt().executor(), sweep_loop(gate_.hold()), [](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& err) {
            NM_LOG(error, subsystem) << "idle sweep failed: " << err.what();
        }
    });
}

void TableQueryClient::stop() {
    if (gate_.closed()) return;
    gate_.refuse();
    link_.on_table_result(nullptr);
    link_.on_job_update(nullptr);
    for (auto& [key, q] : in_flight_) {
        q->error = Error{Errc::unavailable,
                         "table query for " + key + " abandoned: the agent is stopping"};
        q->done.notify_all();
    }
    in_flight_.clear();
    asked_.clear();
    sweep_timer_.cancel();
}

awaitable<void> TableQueryClient::close() {
    stop();
    co_await gate_.close();
}

awaitable<Result<std::vector<TableEntry>>> TableQueryClient::resolve(Ipv4 address) {
    return resolve(address, Ipv4{});
}

awaitable<Result<std::vector<TableEntry>>> TableQueryClient::resolve(Ipv4 address, Ipv4 asker) {
    return query(address.to_string(), tablequery_request_by_ip(address), asker);
}

awaitable<Result<std::vector<TableEntry>>> TableQueryClient::resolve(const Ipv6& address) {
    return resolve(address, Ipv4{});
}

awaitable<Result<std::vector<TableEntry>>> TableQueryClient::resolve(const Ipv6& address,
                                                                     Ipv4 asker) {
    return query(address.to_string(), tablequery_request_by_ip(address), asker);
}

awaitable<Result<std::vector<TableEntry>>> TableQueryClient::resolve_job(std::string job,
                                                                         Ipv4 asker) {
    if (auto parsed = parse_job_name(job); !parsed) {
        co_return tl::unexpected(parsed.error());
    }
    std::string payload = tablequery_request_by_name(job);
    co_return co_await query(std::move(job), std::move(payload), asker);
}

awaitable<Result<std::vector<TableEntry>>> TableQueryClient::query(std::string key,
                                                                   std::string payload,
                                                                   Ipv4 asker) {
    using namespace asio::experimental::awaitable_operators;
    auto hold = gate_.try_hold();
    if (!hold) co_return fail(Errc::unavailable, "table query client is stopped");
    auto now = Clock::now();
    if (auto it = negative_.find(key); it != negative_.end()) {
        if (now < it->second) {
            ++stats_.negative_hits;
            co_return std::vector<TableEntry>{};
        }
        negative_.erase(it);
    }
    std::shared_ptr<Query> q;
    if (auto it = in_flight_.find(key); it != in_flight_.end()) {
        q = it->second;
        ++stats_.coalesced;
    } else {
        const bool asker_full = asker.value != 0 && asked_.contains(asker) &&
                                asked_[asker] >= options_.max_in_flight_per_asker;
        if (asker_full) {
            ++stats_.refused;
            if (auto n = log_every_.due("refused"))
                NM_LOG(warn, subsystem)
                    << "table query for " << key << " refused: its asker " << asker.to_string()
                    << " has too many queries in flight (" << n << " refused since the last line)";
            co_return fail(Errc::exhausted, "too many table queries in flight");
        }
        q = std::make_shared<Query>(link_.mqtt().executor());
        q->sent = now;
        q->asker = asker;
        in_flight_.emplace(key, q);
        if (asker.value != 0) ++asked_[asker];
        ++stats_.requests;
        if (auto sent = link_.publish_table_query(std::move(payload)); !sent) {
            forget(key, q.get());
            q->error = sent.error();
            q->done.notify_all();
            co_return tl::unexpected(sent.error());
        }
    }
    // Every waiter of a query times out at the same moment, counted from its first request.
    SteadyTimer deadline(link_.mqtt().executor(), q->sent + options_.timeout);
    co_await (q->done.wait() || deadline.async_wait());
    if (q->answer) co_return *q->answer;
    if (!q->error) {
        // The first waiter to wake at the deadline records the timeout for all.
        ++stats_.timeouts;
        q->error =
            Error{Errc::timeout, "table query for " + key + ": no answer from the cluster within " +
                                     std::to_string(options_.timeout.count()) + " ms"};
        forget(key, q.get());
        if (auto n = log_every_.due("timeout"))
            NM_LOG(warn, subsystem)
                << q->error->message << " (" << n << " timed out since the last line)";
    }
    co_return tl::unexpected(*q->error);
}

void TableQueryClient::handle_result(std::string_view payload) {
    auto parsed = parse_tablequery_result(payload);
    if (!parsed) {
        ++stats_.malformed;
        if (auto n = log_every_.due("malformed"))
            NM_LOG(warn, subsystem)
                << "ignoring malformed tablequery/result: " << parsed.error().message << " (" << n
                << " since the last line)";
        return;
    }
    TableQueryResult& result = *parsed;
    const std::string& job = result.job;
    stats_.pending += result.pending;
    stats_.invalid += result.invalid.size();
    for (const auto& why : result.invalid)
        NM_LOG(warn, subsystem) << "tablequery/result for "
                                << (job.empty() ? result.query_key : job) << ": skipping " << why;
    if (result.pending)
        NM_LOG(debug, subsystem) << "tablequery/result for " << job << ": " << result.pending
                                 << " instance(s) not running yet";

    // A job with instances, running or not, is followed; its running ones become its entries.
    // A job of interest the cluster answers without instances is gone: its entries go. An answer
    // whose every instance is bad tells nothing: the table keeps what it has.
    const bool has_instances = !result.entries.empty() || result.pending || !result.invalid.empty();
    const bool only_invalid = result.entries.empty() && !result.invalid.empty();
    std::optional<Error> refused;
    if (!job.empty() && !only_invalid && (has_instances || interest_.contains(job))) {
        if (has_instances) take_interest(job);
        if (auto written = replace_job_(job, result.entries); !written) refused = written.error();
    }
    if (refused) {
        ++stats_.rejected;
        NM_LOG(warn, subsystem) << "table refused the cluster's entries for " << job << ": "
                                << refused->message;
    }

    // Seed-era answers carry no query_key: every address and the name in them may be a key.
    std::unordered_set<std::string> keys;
    if (!result.query_key.empty()) keys.insert(result.query_key);
    if (auto v6 = Ipv6::parse(result.query_key)) keys.insert(v6->to_string());  // as we wrote it
    if (!job.empty()) keys.insert(job);
    for (const auto& e : result.entries) {
        keys.insert(e.nsip.to_string());
        if (!e.nsipv6.is_unspecified()) keys.insert(e.nsipv6.to_string());
        for (const auto& sip : e.serviceip) {
            keys.insert(sip.address.to_string());
            if (!sip.address_v6.is_unspecified()) keys.insert(sip.address_v6.to_string());
        }
    }
    auto now = Clock::now();
    for (const auto& key : keys) {
        if (result.entries.empty()) {
            negative_[key] = now + options_.negative_ttl;
        } else {
            negative_.erase(key);
        }
        if (refused) {
            complete_with_error(
                key, Error{Errc::invalid_argument, "the cluster's entries for " + job +
                                                       " were refused: " + refused->message});
        } else {
            complete(key, result.entries);
        }
    }
}

void TableQueryClient::complete_with_error(const std::string& key, const Error& error) {
    auto it = in_flight_.find(key);
    if (it == in_flight_.end()) return;
    std::shared_ptr<Query> q = it->second;
    forget(key, q.get());
    q->error = error;
    q->done.notify_all();
}

void TableQueryClient::complete(const std::string& key, const std::vector<TableEntry>& entries) {
    auto it = in_flight_.find(key);
    if (it == in_flight_.end()) return;
    std::shared_ptr<Query> q = it->second;
    forget(key, q.get());
    std::vector<TableEntry> answer;
    if (auto ip = Ipv4::parse(key)) {
        // By address: only the instances that carry it (an RR address: all of them).
        for (const auto& e : entries) {
            bool carries = e.nsip == *ip;
            for (const auto& sip : e.serviceip) carries = carries || sip.address == *ip;
            if (carries) answer.push_back(e);
        }
    } else {
        answer = entries;
    }
    ++stats_.answers;
    stats_.latency_seconds_sum += std::chrono::duration<double>(Clock::now() - q->sent).count();
    ++stats_.latency_count;
    q->answer = std::move(answer);
    q->done.notify_all();
}

void TableQueryClient::take_interest(const std::string& job) {
    if (job.empty()) return;
    auto [it, inserted] = interest_.try_emplace(job, Clock::now());
    if (inserted) {
        link_.watch_job(job);
    } else {
        it->second = Clock::now();
    }
}

void TableQueryClient::note_used(const std::string& job) {
    if (auto it = interest_.find(job); it != interest_.end()) it->second = Clock::now();
}

std::vector<std::string> TableQueryClient::interested_jobs() const {
    std::vector<std::string> jobs;
    for (const auto& [job, last] : interest_) jobs.push_back(job);
    return jobs;
}

void TableQueryClient::handle_job_update(const std::string& job) {
    if (gate_.closed() || !interest_.contains(job)) return;
    ++stats_.refreshes;
    NM_LOG(info, subsystem) << "updates available for " << job << "; querying it again";
    negative_.erase(job);
    auto hold = gate_.try_hold();
    if (!hold) return;
    asio::co_spawn(
        link_.mqtt().executor(),
        [this, job, hold = std::move(*hold)]() -> awaitable<void> {
            auto refreshed = co_await resolve_job(job);
            if (!refreshed)
                NM_LOG(warn, subsystem)
                    << "refresh of " << job << " failed: " << refreshed.error().message;
        },
        [](std::exception_ptr) {});
}

void TableQueryClient::drop_interest(const std::string& job) {
    NM_LOG(info, subsystem) << "dropping interest in idle job " << job;
    if (auto sent = link_.publish_interest_remove(job); !sent)
        NM_LOG(warn, subsystem) << "interest/remove for " << job << ": " << sent.error().message;
    link_.unwatch_job(job);
    interest_.erase(job);
    if (auto removed = replace_job_(job, {}); !removed)
        NM_LOG(warn, subsystem) << "removing idle " << job
                                << " from the table: " << removed.error().message;
    ++stats_.dropped;
}

awaitable<void> TableQueryClient::sweep_loop(Gate::Holder /*held while it runs*/) {
    while (!gate_.closed()) {
        sweep_timer_.expires_after(options_.sweep_every);
        co_await sweep_timer_.async_wait();
        if (gate_.closed()) co_return;
        if (used_jobs_) {
            auto used = co_await used_jobs_();
            if (gate_.closed()) co_return;
            for (const auto& job : used) note_used(job);
        }
        auto now = Clock::now();
        std::vector<std::string> idle;
        for (const auto& [job, last] : interest_)
            if (now - last >= options_.idle_after && !(is_local_ && is_local_(job)))
                idle.push_back(job);
        for (const auto& job : idle) drop_interest(job);
        std::erase_if(negative_, [now](const auto& item) { return item.second <= now; });
        if (negative_.empty()) negative_ = {};  // after a flood of unknown keys: buckets back
    }
}

void TableQueryClient::append_metrics(MetricsText& out) const {
    auto counter = [&out](std::string_view name, std::string_view help, uint64_t value) {
        out.single("netmanager_table_query_" + std::string(name), "counter", help,
                   static_cast<double>(value));
    };
    counter("requests_total", "Table queries published to the cluster.", stats_.requests);
    counter("answers_total", "Table queries answered by the cluster.", stats_.answers);
    counter("timeouts_total", "Table queries the cluster did not answer in time.", stats_.timeouts);
    counter("negative_hits_total", "Resolves answered from the negative cache.",
            stats_.negative_hits);
    counter("coalesced_total", "Resolves that joined a query already in flight.", stats_.coalesced);
    counter("malformed_total", "Malformed table query results ignored.", stats_.malformed);
    counter("instances_pending_total",
            "Instances skipped in table query results because they are not running yet (null "
            "addresses).",
            stats_.pending);
    counter("instances_invalid_total", "Instances skipped in table query results for a bad value.",
            stats_.invalid);
    counter("rejected_total", "Table query results the table refused.", stats_.rejected);
    counter("refreshes_total", "Job refreshes after updates_available.", stats_.refreshes);
    counter("interest_dropped_total", "Jobs dropped after idling.", stats_.dropped);
    counter("refused_total", "Resolves failed at once: their asker had too many in flight.",
            stats_.refused);
    constexpr std::string_view latency = "netmanager_table_query_latency_seconds";
    out.family(latency, "summary", "Time from request to answer.")
        .sample(std::string(latency) + "_sum", stats_.latency_seconds_sum)
        .sample(std::string(latency) + "_count", static_cast<double>(stats_.latency_count));
}

}  // namespace nm
