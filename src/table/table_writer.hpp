#pragma once
// The one writer of the translation table. It lives on shard 0 with the authoritative table,
// validates each write, applies it, and streams it as a versioned TableChange to the replica of
// every shard (asio::post to that shard's executor, so each replica sees the changes in order).
// A change posted before some later message to the same shard is applied before that message:
// a coroutine that wrote on shard 0 and hops to shard k finds the change already there. The
// writer's own shard's replica is updated at once, inside the write call.
#include <functional>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "core/address.hpp"
#include "core/error.hpp"
#include "core/shard.hpp"
#include "table/translation_table.hpp"

namespace nm {

// One TranslationTable per shard; replica(i) is touched only on shard i.
class TableReplicas {
  public:
    explicit TableReplicas(unsigned shards);
    unsigned count() const { return static_cast<unsigned>(tables_.size()); }
    TranslationTable& replica(unsigned shard) { return *tables_.at(shard); }
    const TranslationTable& replica(unsigned shard) const { return *tables_.at(shard); }

  private:
    std::vector<std::unique_ptr<TranslationTable>> tables_;
};

class TableWriter {
  public:
    // `replicas` must have one table per shard and outlive the writer and the shards' queues.
    TableWriter(Shards& shards, TableReplicas& replicas, Networks networks);

    // Call these on shard 0 (or before the shards start). Each validates (a bad entry changes
    // nothing and the error names the field), applies, and broadcasts.
    Result<void> upsert(TableEntry entry);
    // All or nothing: every entry is checked before the first is written; the error names the
    // entry ("<job> instance <n>: nsip: ..."). Returns how many were written.
    Result<size_t> upsert_all(std::vector<TableEntry> entries);
    Result<size_t> remove_nsip(Ipv4 nsip);
    Result<size_t> remove_job(std::string_view job_name);
    Result<size_t> remove_instance(std::string_view job_name, int instance);
    // The job's entries become exactly `entries` (each must carry that job name), atomically for
    // every reader: replicas apply it as one change.
    Result<void> replace_job(std::string_view job_name, std::vector<TableEntry> entries);

    // Calls `fn` on shard 0 after each change is applied to table() (before the replicas may
    // have it). Returns the id unsubscribe() takes.
    using Subscriber =
        std::function<void(const TableChange& change, const TranslationTable& table)>;
    size_t subscribe(Subscriber fn);
    void unsubscribe(size_t id);

    const TranslationTable& table() const { return table_; }
    uint64_t version() const { return table_.version(); }

  private:
    void publish(TableChange change);
    void publish_upsert(TableEntry entry);

    Shards& shards_;
    TableReplicas& replicas_;
    Networks networks_;
    TranslationTable table_;
    std::vector<std::pair<size_t, Subscriber>> subscribers_;
    size_t next_subscriber_ = 0;
};

}  // namespace nm
