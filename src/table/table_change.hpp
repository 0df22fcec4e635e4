#pragma once
// One write to the translation table, as shard 0 streams it to every replica. Changes carry a
// version that increases by one per change, so a replica can tell it has them all, in order.
#include <cstdint>
#include <string>
#include <vector>

#include "table/entry.hpp"

namespace nm {

struct TableChange {
    enum class Kind : uint8_t {
        upsert,           // entries[0]: add, or replace the entry with the same job + instance
        remove_nsip,      // nsip
        remove_job,       // job
        remove_instance,  // job + instance
        replace_job,      // job's entries become exactly `entries` (possibly none)
    };
    uint64_t version = 0;
    Kind kind = Kind::upsert;
    std::vector<TableEntry> entries;
    std::string job;
    int instance = 0;
    Ipv4 nsip;
};

}  // namespace nm
