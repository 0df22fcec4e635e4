#include "mdns/names_index.hpp"

#include <algorithm>
#include <charconv>

namespace nm {

namespace {

constexpr std::string_view local_suffix = ".local";

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return (x | 0x20) == (y | 0x20);
           });
}

// A job name part as protocol.md allows it: 1..30 of [A-Za-z0-9-].
bool is_part(std::string_view label) {
    if (label.empty() || label.size() > 30) return false;
    return std::all_of(label.begin(), label.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-';
    });
}

template <class Ip>
void add_unique(std::vector<Ip>& list, const Ip& ip) {
    if (std::find(list.begin(), list.end(), ip) == list.end()) list.push_back(ip);
}

template <class Ip>
std::vector<Ip> pick(const NameQuery& query, const std::vector<Ip>& rr,
                     const std::vector<Ip>& closest,
                     const std::vector<std::pair<int, Ip>>& instances) {
    switch (query.kind) {
        case NameQuery::Kind::rr:
            return rr;
        case NameQuery::Kind::closest:
            return closest;
        case NameQuery::Kind::instance:
            for (auto& [n, ip] : instances)
                if (n == query.instance) return {ip};
            return {};
    }
    return {};
}

}  // namespace

std::string to_lower(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c | 0x20);
    return out;
}

bool is_local_name(std::string_view name) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    return name.size() > local_suffix.size() &&
           iequals(name.substr(name.size() - local_suffix.size()), local_suffix);
}

std::optional<NameQuery> parse_name(std::string_view name) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (!is_local_name(name)) return std::nullopt;
    name.remove_suffix(local_suffix.size());
    std::vector<std::string_view> labels;
    for (size_t start = 0;;) {
        size_t dot = name.find('.', start);
        labels.push_back(name.substr(start, dot == std::string_view::npos ? dot : dot - start));
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    NameQuery q;
    if (labels.size() == 5) {
        std::string_view first = labels.front();
        constexpr std::string_view instance = "instance-";
        if (iequals(first, "closest")) {
            q.kind = NameQuery::Kind::closest;
        } else if (first.size() > instance.size() && first.size() <= instance.size() + 9 &&
                   iequals(first.substr(0, instance.size()), instance)) {
            auto digits = first.substr(instance.size());
            auto [end, ec] =
                std::from_chars(digits.data(), digits.data() + digits.size(), q.instance);
            if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
            q.kind = NameQuery::Kind::instance;
        } else {
            return std::nullopt;
        }
        labels.erase(labels.begin());
    }
    if (labels.size() != 4 || !std::all_of(labels.begin(), labels.end(), is_part))
        return std::nullopt;
    // svc.svcns.app.appns -> app.appns.svc.svcns
    q.job.append(labels[2]).append(".").append(labels[3]).append(".");
    q.job.append(labels[0]).append(".").append(labels[1]);
    return q;
}

std::string answer_name(const JobNames& job, const NameQuery& query) {
    std::string name;
    if (query.kind == NameQuery::Kind::closest) name = "closest.";
    if (query.kind == NameQuery::Kind::instance)
        name = "instance-" + std::to_string(query.instance) + ".";
    name += job.servicename + "." + job.servicenamespace + "." + job.appname + "." + job.appns +
            ".local";
    return name;
}

std::vector<Ipv4> addresses(const JobNames& job, const NameQuery& query) {
    return pick(query, job.rr, job.closest, job.instances);
}

std::vector<Ipv6> addresses_v6(const JobNames& job, const NameQuery& query) {
    return pick(query, job.rr_v6, job.closest_v6, job.instances_v6);
}

bool name_exists(const JobNames& job, const NameQuery& query) {
    if (query.kind != NameQuery::Kind::instance) return true;
    return std::any_of(job.instances.begin(), job.instances.end(),
                       [&](auto& i) { return i.first == query.instance; });
}

void NamesIndex::rebuild(const TranslationTable& table) {
    jobs_.clear();
    std::string last;
    for (const TableEntry& e : table.entries()) {
        std::string job = e.job_name();
        if (job == last) continue;
        refresh(table, job);
        last = std::move(job);
    }
}

void NamesIndex::apply(const TableChange& change, const TranslationTable& table) {
    switch (change.kind) {
        case TableChange::Kind::upsert:
            if (change.entries.empty()) return;
            // The new entry may have evicted another one that held its nsip.
            refresh_holders(table, change.entries.front().nsip);
            refresh(table, change.entries.front().job_name());
            return;
        case TableChange::Kind::remove_nsip:
            refresh_holders(table, change.nsip);
            return;
        case TableChange::Kind::remove_job:
        case TableChange::Kind::remove_instance:
        case TableChange::Kind::replace_job:
            refresh(table, change.job);
            return;
    }
}

void NamesIndex::refresh_holders(const TranslationTable& table, Ipv4 nsip) {
    std::vector<std::string> holders;
    for (auto& [key, names] : jobs_)
        if (std::find(names.nsips.begin(), names.nsips.end(), nsip) != names.nsips.end())
            holders.push_back(names.job);
    for (auto& job : holders) refresh(table, job);
}

void NamesIndex::refresh(const TranslationTable& table, std::string_view job) {
    std::string key = to_lower(job);
    auto entries = table.find_job(job);
    if (entries.empty()) {
        jobs_.erase(key);
        return;
    }
    JobNames names;
    const TableEntry& first = *entries.front();
    names.job = first.job_name();
    names.appname = first.appname;
    names.appns = first.appns;
    names.servicename = first.servicename;
    names.servicenamespace = first.servicenamespace;
    std::vector<const TableEntry*> sorted(entries.begin(), entries.end());
    std::sort(sorted.begin(), sorted.end(),
              [](auto* a, auto* b) { return a->instancenumber < b->instancenumber; });
    for (const TableEntry* e : sorted) {
        names.nsips.push_back(e->nsip);
        for (const ServiceIp& sip : e->serviceip) {
            const bool v6 = !sip.address_v6.is_unspecified();
            switch (sip.type) {
                case IpType::RR:
                    add_unique(names.rr, sip.address);
                    if (v6) add_unique(names.rr_v6, sip.address_v6);
                    break;
                case IpType::Closest:
                    add_unique(names.closest, sip.address);
                    if (v6) add_unique(names.closest_v6, sip.address_v6);
                    break;
                case IpType::InstanceNumber:
                    names.instances.emplace_back(e->instancenumber, sip.address);
                    if (v6) names.instances_v6.emplace_back(e->instancenumber, sip.address_v6);
                    break;
            }
        }
    }
    jobs_.insert_or_assign(std::move(key), std::move(names));
}

const JobNames* NamesIndex::find(std::string_view job) const {
    auto it = jobs_.find(to_lower(job));
    return it == jobs_.end() ? nullptr : &it->second;
}

}  // namespace nm
