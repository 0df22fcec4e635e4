#include "tunnel/path_counters.hpp"

#include <numeric>

namespace nm {

std::string_view to_string(DropReason reason) {
    switch (reason) {
        case DropReason::malformed:
            return "malformed";
        case DropReason::no_nsipv6:
            return "no_nsipv6";
        case DropReason::ttl_expired:
            return "ttl_expired";
        case DropReason::fragment:
            return "fragment";
        case DropReason::not_routable:
            return "not_routable";
        case DropReason::local_loop:
            return "local_loop";
        case DropReason::unknown_service:
            return "unknown_service";
        case DropReason::unknown_nsip:
            return "unknown_nsip";
        case DropReason::no_sender_entry:
            return "no_sender_entry";
        case DropReason::misdelivered:
            return "misdelivered";
        case DropReason::unknown_node:
            return "unknown_node";
        case DropReason::query_failed:
            return "query_failed";
        case DropReason::backlog_full:
            return "backlog_full";
        case DropReason::foreign_source:
            return "foreign_source";
        case DropReason::spoofed_source:
            return "spoofed_source";
        case DropReason::unknown_source:
            return "unknown_source";
        case DropReason::not_namespace:
            return "not_namespace";
        case DropReason::split_failed:
            return "split_failed";
        case DropReason::too_big:
            return "too_big";
    }
    return "unknown";
}
static_assert(static_cast<size_t>(DropReason::too_big) + 1 == drop_reason_count);

uint64_t PathCounters::dropped_total() const {
    return std::accumulate(drops.begin(), drops.end(), uint64_t{0});
}

PathCounters& PathCounters::operator+=(const PathCounters& o) {
    for (size_t i = 0; i < drops.size(); ++i) drops[i] += o.drops[i];
    outgoing_cached += o.outgoing_cached;
    outgoing_new_flows += o.outgoing_new_flows;
    outgoing_direct += o.outgoing_direct;
    fragments_forwarded += o.fragments_forwarded;
    incoming_translated += o.incoming_translated;
    incoming_unchanged += o.incoming_unchanged;
    return *this;
}

}  // namespace nm
