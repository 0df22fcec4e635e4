#pragma once
// Answers queries for our .local names (docs/names.md) from the names index. A job the index
// does not know is asked of the cluster by name (a table query with `sname`) first: one lookup
// per job however many queries wait for it; a job the cluster does not know either is NXDOMAIN,
// remembered for `negative_ttl`. Lives on shard 0 with the index.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.hpp"
#include "core/gate.hpp"
#include "core/shard.hpp"
#include "mdns/dns_message.hpp"
#include "mdns/dns_stats.hpp"
#include "mdns/names_index.hpp"
#include "mdns/reply_cache.hpp"

namespace nm {

// Asks the cluster for a job by name; the answer lands in the table (and so in the index)
// before it returns. Standalone mode has nothing to ask: an empty result.
using FindJob = std::function<awaitable<Result<std::vector<TableEntry>>>(std::string job)>;

struct NameOptions {
    uint32_t ttl = 5;                              // of our answers
    std::chrono::milliseconds negative_ttl{5000};  // a job the cluster does not know
    std::chrono::milliseconds lookup_timeout{6000};
    size_t max_waiting = 1024;  // queries waiting for lookups; more are dropped (overload)
};

class NameAnswerer {
  public:
    NameAnswerer(const NamesIndex& index, FindJob find_job, NameOptions options, DnsStats& stats);
    ~NameAnswerer();
    NameAnswerer(const NameAnswerer&) = delete;
    NameAnswerer& operator=(const NameAnswerer&) = delete;

    // The reply from the reply cache into `reply` (true), when the index decided this question
    // before and the table has not changed since.
    bool answer_cached(const PlainQuestion& question, std::vector<uint8_t>& reply);
    // The reply when the index or the negative cache decides; nullopt when the job must first
    // be asked for. `query` must be for a .local name.
    std::optional<std::vector<uint8_t>> answer_now(const DnsQuery& query);
    // The table changed: no cached reply holds any more.
    void table_changed() { cache_.clear(); }
    // The reply, asking for the job first when needed; empty when dropped (overload).
    awaitable<std::vector<uint8_t>> answer(DnsQuery query);
    // Wakes every waiting query (they answer SERVFAIL); later lookups fail at once.
    void stop();
    // stop() and awaits the waiting queries' end (and so the lookups they wait for).
    awaitable<void> close();

  private:
    struct Lookup;
    using Clock = std::chrono::steady_clock;
    // Asks for the job (or joins the lookup in flight); true when the lookup completed.
    awaitable<bool> lookup(const std::string& job);
    std::vector<uint8_t> rcode_reply(const DnsQuery& query, uint8_t rcode);
    // The index's reply, kept in the reply cache.
    std::vector<uint8_t> decided(const DnsQuery& query, std::vector<uint8_t> reply,
                                 ReplyCache::Outcome outcome);
    // The reply from the index; nullopt when the index does not have the job.
    std::optional<std::vector<uint8_t>> from_index(const DnsQuery& query, const NameQuery& name);

    const NamesIndex& index_;
    FindJob find_job_;
    NameOptions options_;
    DnsStats& stats_;
    ReplyCache cache_;
    std::unordered_map<std::string, Clock::time_point> negative_;  // lower-case job -> expiry
    std::unordered_map<std::string, std::shared_ptr<Lookup>> in_flight_;
    size_t waiting_ = 0;
    bool stopped_ = false;
    Gate gate_;  // held by every query waiting in answer()
};

}  // namespace nm
