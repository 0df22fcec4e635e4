#pragma once
// Encoded replies to queries for our names, by (lower-case name, type, class). A hit costs a copy
// and three patches (the id, the RD flag and the question's spelling) instead of a parse and an
// encode through libldns with their allocations. Only replies the names index decides are kept
// (not the negative cache's, which expire); the owner empties the cache on every table change.
// Bounded: a full cache starts over. Not thread-safe; lives with the NameAnswerer on shard 0.
#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mdns/dns_message.hpp"

namespace nm {

class ReplyCache {
  public:
    enum class Outcome : uint8_t { answered, nxdomain };  // which counter a hit adds to

    explicit ReplyCache(size_t max_entries = 4096) : max_entries_(max_entries) {}

    // Writes the cached reply to `question` (scanned from its message) into `reply`, with the
    // question's id, RD flag and spelling; nullopt on a miss.
    std::optional<Outcome> find(const PlainQuestion& question, std::vector<uint8_t>& reply);
    // Keeps `reply`, the unicast reply build_reply wrote for `query`; ignored when its question
    // is not the query's name at the usual place.
    void insert(const DnsQuery& query, std::span<const uint8_t> reply, Outcome outcome);
    void clear() { entries_.clear(); }
    size_t size() const { return entries_.size(); }

  private:
    struct Entry {
        std::vector<uint8_t> wire;
        Outcome outcome;
    };
    // key_ := the lower-case name, type and class (reused: no allocation once grown).
    void make_key(std::span<const uint8_t> name, uint16_t qtype, uint16_t qclass);

    size_t max_entries_;
    std::string key_;
    boost::unordered_flat_map<std::string, Entry> entries_;
};

}  // namespace nm
