#include "table/translation_table.hpp"

#include <algorithm>
#include <boost/container_hash/hash.hpp>
#include <iterator>

namespace nm {

size_t TranslationTable::NameHash::operator()(std::string_view s) const noexcept {
    return boost::hash_range(s.begin(), s.end());
}

InstanceRoute TranslationTable::route_of(const TableEntry& e) {
    InstanceRoute r{e.nsip, e.nodeip, Ipv4{}, e.nodeport, e.instancenumber};
    r.nsipv6 = e.nsipv6;
    for (const auto& sip : e.serviceip) {
        if (sip.type == IpType::InstanceNumber) {
            r.own_service_ip = sip.address;
            r.own_service_ipv6 = sip.address_v6;
            break;
        }
    }
    return r;
}

namespace {

// Adds `slot` to the group of `key`, creating it with `type` (the first lister's).
template <class Map, class Key>
void add_to_group(Map& map, const Key& key, IpType type, uint32_t slot) {
    auto [it, fresh] = map.try_emplace(key);
    if (fresh) it->second.type = type;
    it->second.add(slot);
}

template <class Map, class Key>
void remove_from_group(Map& map, const Key& key, uint32_t slot) {
    auto it = map.find(key);
    if (it == map.end()) return;
    it->second.remove(slot);
    if (it->second.slots().empty()) map.erase(it);
}

}  // namespace

const ServiceGroup* TranslationTable::find_service(const Ipv6& service_ip) const {
    auto it = by_service_ip6_.find(service_ip);
    return it == by_service_ip6_.end() ? nullptr : &it->second;
}

std::optional<uint32_t> TranslationTable::slot_of_nsip(const Ipv6& nsipv6) const {
    auto it = by_nsip6_.find(nsipv6);
    if (it == by_nsip6_.end()) return std::nullopt;
    return it->second;
}

const InstanceRoute* TranslationTable::find_nsip(const Ipv6& nsipv6) const {
    auto slot = slot_of_nsip(nsipv6);
    return slot ? &at(*slot).route : nullptr;
}

const ServiceGroup* TranslationTable::find_service(Ipv4 service_ip) const {
    auto it = by_service_ip_.find(service_ip.value);
    return it == by_service_ip_.end() ? nullptr : &it->second;
}

std::optional<uint32_t> TranslationTable::slot_of_nsip(Ipv4 nsip) const {
    auto it = by_nsip_.find(nsip.value);
    if (it == by_nsip_.end()) return std::nullopt;
    return it->second;
}

const InstanceRoute* TranslationTable::find_nsip(Ipv4 nsip) const {
    auto it = by_nsip_.find(nsip.value);
    return it == by_nsip_.end() ? nullptr : &at(it->second).route;
}

bool TranslationTable::is_known_node(Ipv4 ip) const {
    return nodes_.contains(ip.value);
}

std::vector<Ipv4> TranslationTable::nodes_except(Ipv4 self) const {
    std::vector<Ipv4> out;
    out.reserve(node_list_.size());
    std::ranges::remove_copy(node_list_, std::back_inserter(out), self);
    return out;
}

std::vector<const TableEntry*> TranslationTable::find_job(std::string_view job_name) const {
    std::vector<const TableEntry*> out;
    auto it = by_job_.find(job_name);
    if (it == by_job_.end()) return out;
    for (uint32_t slot : it->second.slots) out.push_back(&at(slot).entry);
    std::sort(out.begin(), out.end(),
              [](auto* a, auto* b) { return a->instancenumber < b->instancenumber; });
    return out;
}

const TableEntry* TranslationTable::find_instance(std::string_view job_name, int instance) const {
    auto it = by_job_.find(job_name);
    if (it == by_job_.end()) return nullptr;
    for (uint32_t slot : it->second.slots)
        if (at(slot).entry.instancenumber == instance) return &at(slot).entry;
    return nullptr;
}

std::vector<TableEntry> TranslationTable::entries() const {
    std::vector<std::pair<std::string, uint32_t>> order;
    order.reserve(size());
    for (const auto& [job, index] : by_job_)
        for (uint32_t slot : index.slots) order.emplace_back(job, slot);
    std::sort(order.begin(), order.end(), [this](const auto& a, const auto& b) {
        if (a.first != b.first) return a.first < b.first;
        return at(a.second).entry.instancenumber < at(b.second).entry.instancenumber;
    });
    std::vector<TableEntry> out;
    out.reserve(order.size());
    for (const auto& [job, slot] : order) out.push_back(at(slot).entry);
    return out;
}

void TranslationTable::erase_slot(uint32_t slot) {
    Slot& s = at(slot);
    by_nsip_.erase(s.route.nsip.value);
    if (!s.entry.nsipv6.is_unspecified()) by_nsip6_.erase(s.entry.nsipv6);
    for (const auto& sip : s.entry.serviceip) {
        remove_from_group(by_service_ip_, sip.address.value, slot);
        if (!sip.address_v6.is_unspecified())
            remove_from_group(by_service_ip6_, sip.address_v6, slot);
    }
    if (auto it = by_job_.find(s.entry.job_name()); it != by_job_.end()) {
        auto& v = it->second.slots;
        v.erase(std::remove(v.begin(), v.end(), slot), v.end());
        if (v.empty()) by_job_.erase(it);
    }
    if (auto it = nodes_.find(s.route.node_ip.value); it != nodes_.end() && --it->second == 0) {
        nodes_.erase(it);
        node_list_.erase(
            std::ranges::lower_bound(node_list_, s.route.node_ip.value, {}, &Ipv4::value));
    }
    s.entry = TableEntry{};
    s.used = false;
    free_slots_.push_back(slot);
    ++route_epoch_;
    // Emptied (every job gone or dropped after a flood of answers): the memory goes back.
    if (by_nsip_.empty()) {
        chunks_ = {};
        free_slots_ = {};
        by_nsip_ = {};
        by_service_ip_ = {};
        by_nsip6_ = {};
        by_service_ip6_ = {};
        by_job_ = {};
        nodes_ = {};
        node_list_ = {};
    }
}

uint32_t TranslationTable::new_slot() {
    if (chunks_.empty() || chunks_.back().size() == chunk_size) chunks_.emplace_back();
    chunks_.back().emplace_back();
    return static_cast<uint32_t>((chunks_.size() - 1) * chunk_size + chunks_.back().size() - 1);
}

void TranslationTable::upsert(TableEntry entry) {
    const std::string job = entry.job_name();
    // The same instance again, or another instance holding this nsip: both go first.
    if (auto it = by_job_.find(job); it != by_job_.end()) {
        for (uint32_t slot : it->second.slots) {
            if (at(slot).entry.instancenumber == entry.instancenumber) {
                // Unchanged entries (periodic refreshes) keep flows' epochs valid.
                if (at(slot).entry == entry) return;
                erase_slot(slot);
                break;
            }
        }
    }
    if (auto it = by_nsip_.find(entry.nsip.value); it != by_nsip_.end()) {
        erase_slot(it->second);
    }
    if (!entry.nsipv6.is_unspecified())
        if (auto it = by_nsip6_.find(entry.nsipv6); it != by_nsip6_.end()) erase_slot(it->second);

    uint32_t slot;
    if (!free_slots_.empty()) {
        slot = free_slots_.back();
        free_slots_.pop_back();
    } else {
        slot = new_slot();
    }
    Slot& s = at(slot);
    s.route = route_of(entry);
    s.entry = std::move(entry);
    s.used = true;
    by_nsip_[s.route.nsip.value] = slot;
    if (!s.entry.nsipv6.is_unspecified()) by_nsip6_[s.entry.nsipv6] = slot;
    for (const auto& sip : s.entry.serviceip) {
        add_to_group(by_service_ip_, sip.address.value, sip.type, slot);
        if (!sip.address_v6.is_unspecified())
            add_to_group(by_service_ip6_, sip.address_v6, sip.type, slot);
    }
    by_job_[job].slots.push_back(slot);
    if (++nodes_[s.route.node_ip.value] == 1)
        node_list_.insert(
            std::ranges::lower_bound(node_list_, s.route.node_ip.value, {}, &Ipv4::value),
            s.route.node_ip);
}

size_t TranslationTable::remove_nsip(Ipv4 nsip) {
    auto it = by_nsip_.find(nsip.value);
    if (it == by_nsip_.end()) return 0;
    erase_slot(it->second);
    return 1;
}

size_t TranslationTable::remove_job(std::string_view job_name) {
    auto it = by_job_.find(job_name);
    if (it == by_job_.end()) return 0;
    const auto slots = it->second.slots;  // erase_slot edits the index
    for (uint32_t slot : slots) erase_slot(slot);
    return slots.size();
}

size_t TranslationTable::remove_instance(std::string_view job_name, int instance) {
    auto it = by_job_.find(job_name);
    if (it == by_job_.end()) return 0;
    for (uint32_t slot : it->second.slots) {
        if (at(slot).entry.instancenumber == instance) {
            erase_slot(slot);
            return 1;
        }
    }
    return 0;
}

void TranslationTable::replace_job(std::string_view job_name, std::vector<TableEntry> entries) {
    // Entries that stay exactly as they are keep their slot, so their flows stay valid.
    auto keep = [&](const TableEntry& e) {
        return std::find(entries.begin(), entries.end(), e) != entries.end();
    };
    if (auto it = by_job_.find(job_name); it != by_job_.end()) {
        std::vector<uint32_t> gone;
        for (uint32_t slot : it->second.slots)
            if (!keep(at(slot).entry)) gone.push_back(slot);
        for (uint32_t slot : gone) erase_slot(slot);
    }
    for (auto& e : entries) upsert(std::move(e));
}

bool TranslationTable::apply(const TableChange& change) {
    if (change.version != version_ + 1) return false;
    switch (change.kind) {
        case TableChange::Kind::upsert:
            for (const auto& e : change.entries) upsert(e);
            break;
        case TableChange::Kind::remove_nsip:
            remove_nsip(change.nsip);
            break;
        case TableChange::Kind::remove_job:
            remove_job(change.job);
            break;
        case TableChange::Kind::remove_instance:
            remove_instance(change.job, change.instance);
            break;
        case TableChange::Kind::replace_job:
            replace_job(change.job, change.entries);
            break;
    }
    version_ = change.version;
    return true;
}

}  // namespace nm
