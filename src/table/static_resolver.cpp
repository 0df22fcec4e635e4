#include "table/static_resolver.hpp"

namespace nm {

namespace {
template <class Address>
std::vector<TableEntry> entries_of(const TranslationTable& table, const Address& address) {
    std::vector<TableEntry> found;
    if (const ServiceGroup* group = table.find_service(address))
        for (uint32_t slot : group->slots()) found.push_back(table.entry(slot));
    else if (auto slot = table.slot_of_nsip(address))
        found.push_back(table.entry(*slot));
    return found;
}
}  // namespace

std::vector<TableEntry> entries_at(const TranslationTable& table, Ipv4 address) {
    return entries_of(table, address);
}

std::vector<TableEntry> entries_at(const TranslationTable& table, const Ipv6& address) {
    return entries_of(table, address);
}

awaitable<Result<std::vector<TableEntry>>> StaticResolver::resolve(Ipv4 address) {
    co_return entries_at(table_.table(), address);
}

awaitable<Result<std::vector<TableEntry>>> StaticResolver::resolve(const Ipv6& address) {
    co_return entries_at(table_.table(), address);
}

}  // namespace nm
