#include "table/table_writer.hpp"

#include <boost/asio/post.hpp>

#include "core/log.hpp"

namespace nm {

TableReplicas::TableReplicas(unsigned shards) {
    for (unsigned i = 0; i < shards; ++i) tables_.push_back(std::make_unique<TranslationTable>());
}

TableWriter::TableWriter(Shards& shards, TableReplicas& replicas, Networks networks)
    : shards_(shards), replicas_(replicas), networks_(networks) {
    if (replicas.count() != shards.count())
        throw std::logic_error("TableWriter: one replica per shard needed");
}

size_t TableWriter::subscribe(Subscriber fn) {
    subscribers_.emplace_back(next_subscriber_, std::move(fn));
    return next_subscriber_++;
}

void TableWriter::unsubscribe(size_t id) {
    std::erase_if(subscribers_, [id](auto& s) { return s.first == id; });
}

void TableWriter::publish(TableChange change) {
    change.version = table_.version() + 1;
    table_.apply(change);
    for (auto& [id, fn] : subscribers_) fn(change, table_);
    auto shared = std::make_shared<const TableChange>(std::move(change));
    const bool on_group = Shards::current() == &shards_;
    for (unsigned i = 0; i < replicas_.count(); ++i) {
        TranslationTable* table = &replicas_.replica(i);
        // The writer's own shard sees its write at once (a post would run only after the
        // caller's handler), unless earlier changes are still queued for it.
        if (on_group && current_shard() == static_cast<int>(i) &&
            table->version() + 1 == shared->version) {
            table->apply(*shared);
            continue;
        }
        asio::post(shards_.executor(i), [shared, table, i] {
            if (table->version() >= shared->version) return;  // applied at once, above
            if (!table->apply(*shared))
                NM_LOG(error, "table") << "shard " << i << " replica at version "
                                       << table->version() << " got change " << shared->version;
        });
    }
}

Result<void> TableWriter::upsert(TableEntry entry) {
    if (auto ok = validate(entry, networks_); !ok) return ok;
    publish_upsert(std::move(entry));
    return {};
}

Result<size_t> TableWriter::upsert_all(std::vector<TableEntry> entries) {
    for (const auto& e : entries)
        if (auto ok = validate(e, networks_); !ok)
            return fail(ok.error().code, e.job_name() + " instance " +
                                             std::to_string(e.instancenumber) + ": " +
                                             ok.error().message);
    for (auto& e : entries) publish_upsert(std::move(e));
    return entries.size();
}

void TableWriter::publish_upsert(TableEntry entry) {
    TableChange change;
    change.kind = TableChange::Kind::upsert;
    change.entries.push_back(std::move(entry));
    publish(std::move(change));
}

Result<size_t> TableWriter::remove_nsip(Ipv4 nsip) {
    if (!table_.find_nsip(nsip)) return size_t{0};
    TableChange change;
    change.kind = TableChange::Kind::remove_nsip;
    change.nsip = nsip;
    publish(std::move(change));
    return size_t{1};
}

Result<size_t> TableWriter::remove_job(std::string_view job_name) {
    const size_t n = table_.find_job(job_name).size();
    if (n == 0) return size_t{0};
    TableChange change;
    change.kind = TableChange::Kind::remove_job;
    change.job = std::string(job_name);
    publish(std::move(change));
    return n;
}

Result<size_t> TableWriter::remove_instance(std::string_view job_name, int instance) {
    if (!table_.find_instance(job_name, instance)) return size_t{0};
    TableChange change;
    change.kind = TableChange::Kind::remove_instance;
    change.job = std::string(job_name);
    change.instance = instance;
    publish(std::move(change));
    return size_t{1};
}

Result<void> TableWriter::replace_job(std::string_view job_name, std::vector<TableEntry> entries) {
    if (auto job = parse_job_name(job_name); !job) return tl::unexpected(job.error());
    for (size_t i = 0; i < entries.size(); ++i) {
        const auto& e = entries[i];
        auto where = [&] { return "entry " + std::to_string(i + 1) + ": "; };
        if (e.job_name() != job_name)
            return fail(Errc::invalid_argument, where() + "job " + e.job_name() +
                                                    " is not the job being replaced, " +
                                                    std::string(job_name));
        if (auto ok = validate(e, networks_); !ok)
            return fail(ok.error().code, where() + ok.error().message);
        for (size_t j = 0; j < i; ++j)
            if (entries[j].instancenumber == e.instancenumber || entries[j].nsip == e.nsip)
                return fail(Errc::invalid_argument,
                            where() + "repeats the instance number or nsip of entry " +
                                std::to_string(j + 1));
    }
    TableChange change;
    change.kind = TableChange::Kind::replace_job;
    change.job = std::string(job_name);
    change.entries = std::move(entries);
    publish(std::move(change));
    return {};
}

}  // namespace nm
