#pragma once
// Standalone mode's resolver, beside the table writer: the table is all there is, so it answers
// from the table itself and a miss is final.
#include <vector>

#include "table/resolver.hpp"
#include "table/table_writer.hpp"

namespace nm {

class StaticResolver final : public Resolver {
  public:
    explicit StaticResolver(TableWriter& table) : table_(table) {}
    awaitable<Result<std::vector<TableEntry>>> resolve(Ipv4 address) override {
        co_return lookup(address);
    }
    awaitable<Result<std::vector<TableEntry>>> resolve(const Ipv6& address) override {
        co_return lookup(address);
    }

  private:
    template <class Address>
    std::vector<TableEntry> lookup(const Address& address) const {
        const TranslationTable& t = table_.table();
        std::vector<TableEntry> found;
        if (auto* group = t.find_service(address))
            for (uint32_t slot : group->slots) found.push_back(t.entry(slot));
        else if (auto slot = t.slot_of_nsip(address))
            found.push_back(t.entry(*slot));
        return found;
    }

    TableWriter& table_;
};

}  // namespace nm
