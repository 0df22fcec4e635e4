#pragma once
// Standalone mode's resolver, beside the table writer: the table is all there is, so it answers
// from the table itself and a miss is final.
#include <vector>

#include "table/resolver.hpp"
#include "table/table_writer.hpp"

namespace nm {

// The entries that carry `address` as a ServiceIP, or else the entry whose nsip (nsipv6) it is
// (direct traffic to an instance); none if the table does not know it.
std::vector<TableEntry> entries_at(const TranslationTable& table, Ipv4 address);
std::vector<TableEntry> entries_at(const TranslationTable& table, const Ipv6& address);

class StaticResolver final : public Resolver {
  public:
    explicit StaticResolver(const TableWriter& table) : table_(table) {}
    awaitable<Result<std::vector<TableEntry>>> resolve(Ipv4 address) override;
    awaitable<Result<std::vector<TableEntry>>> resolve(const Ipv6& address) override;

  private:
    const TableWriter& table_;
};

}  // namespace nm
