#pragma once
// The names of the jobs in the translation table (docs/names.md): for job app.appns.svc.svcns,
//   svc.svcns.app.appns.local               its RR ServiceIPs
//   closest.svc.svcns.app.appns.local       its Closest ServiceIPs
//   instance-<n>.svc.svcns.app.appns.local  instance n's own (InstanceNumber) ServiceIP
// Kept from the table: every TableChange refreshes the jobs it touched. Lookups are by the
// lower-case job name (DNS matches case-insensitively); answers carry the job's own spelling.
// Not thread-safe; lives on shard 0 next to the authoritative table.
#include <boost/unordered/unordered_flat_map.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/address.hpp"
#include "table/table_change.hpp"
#include "table/translation_table.hpp"

namespace nm {

struct JobNames {
    std::string job;  // as the table spells it: "app.appns.svc.svcns"
    std::string appname, appns, servicename, servicenamespace;
    std::vector<Ipv4> rr, closest;                // distinct, in table order
    std::vector<std::pair<int, Ipv4>> instances;  // instance number -> its InstanceNumber IP
    // The same ServiceIPs' IPv6 addresses (Address_v6), where they have one.
    std::vector<Ipv6> rr_v6, closest_v6;
    std::vector<std::pair<int, Ipv6>> instances_v6;
    std::vector<Ipv4> nsips;  // of its entries (to follow evictions)
};

// Which of a job's names a query asks for.
struct NameQuery {
    enum class Kind { rr, closest, instance } kind = Kind::rr;
    int instance = 0;
    std::string job;  // "app.appns.svc.svcns" with the labels as asked
};

// True for "x.local" (any case), the names this agent owns.
bool is_local_name(std::string_view name);
// Reads one of our names ("svc.svcns.app.appns.local", no trailing dot); nullopt for any other
// name, .local or not.
std::optional<NameQuery> parse_name(std::string_view name);
// The owner name an answer carries, in the job's spelling ("instance-2.Web.default.App.ns.local").
std::string answer_name(const JobNames& job, const NameQuery& query);
// The addresses a query's name stands for (empty: the name exists but has no such address).
std::vector<Ipv4> addresses(const JobNames& job, const NameQuery& query);
std::vector<Ipv6> addresses_v6(const JobNames& job, const NameQuery& query);
// The job and instance names exist in the index (a missing instance is no name).
bool name_exists(const JobNames& job, const NameQuery& query);

std::string to_lower(std::string_view text);

class NamesIndex {
  public:
    // Everything anew from the table.
    void rebuild(const TranslationTable& table);
    // After `change` was applied to `table`: refreshes the jobs it touched.
    void apply(const TableChange& change, const TranslationTable& table);
    // The job's names as `table` has them now (erased when it has no entries).
    void refresh(const TranslationTable& table, std::string_view job);

    // By job name in any case.
    const JobNames* find(std::string_view job) const;
    size_t size() const { return jobs_.size(); }

  private:
    // Refreshes the jobs that had an entry at `nsip`.
    void refresh_holders(const TranslationTable& table, Ipv4 nsip);
    boost::unordered_flat_map<std::string, JobNames> jobs_;  // key: lower-case job name
};

}  // namespace nm
