#pragma once
// Counters of the names subsystem, exported as netmanager_dns_* by NameService.
#include <array>
#include <cstdint>

#include "mdns/dns_message.hpp"

namespace nm {

struct DnsStats {
    uint64_t queries_udp = 0, queries_tcp = 0;
    uint64_t answered = 0;          // .local names answered with addresses (NOERROR)
    uint64_t nxdomain = 0;          // .local names that do not exist
    uint64_t forwarded = 0;         // other names sent upstream
    uint64_t forward_answers = 0;   // upstream answers relayed
    uint64_t forward_timeouts = 0;  // upstream queries unanswered in time (SERVFAIL)
    uint64_t lookups = 0;           // table queries by name for unknown jobs
    uint64_t lookup_coalesced = 0;  // askers that joined a lookup already in flight
    uint64_t lookup_failures = 0;   // lookups that failed (SERVFAIL)
    uint64_t negative_hits = 0;     // answered NXDOMAIN from the negative cache
    uint64_t reply_cache_hits = 0;  // answered from the reply cache (also in answered/nxdomain)
    uint64_t mdns_queries = 0, mdns_answers = 0;
    std::array<uint64_t, dns_drop_count> dropped{};
    void drop(DnsDrop reason) { ++dropped[static_cast<size_t>(reason)]; }
};

}  // namespace nm
