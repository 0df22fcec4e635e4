#include "mdns/reply_cache.hpp"

#include <algorithm>

#include "mdns/ldns.hpp"

namespace nm {

void ReplyCache::make_key(std::span<const uint8_t> name, uint16_t qtype, uint16_t qclass) {
    key_.clear();
    for (uint8_t c : name) key_.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c | 0x20 : c));
    for (uint16_t v : {qtype, qclass}) {
        key_.push_back(static_cast<char>(v >> 8));
        key_.push_back(static_cast<char>(v & 0xff));
    }
}

std::optional<ReplyCache::Outcome> ReplyCache::find(const PlainQuestion& question,
                                                    std::vector<uint8_t>& reply) {
    if (entries_.empty()) return std::nullopt;
    make_key(question.name, question.qtype, question.qclass);
    auto it = entries_.find(key_);
    if (it == entries_.end()) return std::nullopt;
    const std::vector<uint8_t>& wire = it->second.wire;
    reply.assign(wire.begin(), wire.end());
    ldns_write_uint16(reply.data(), question.id);
    reply[2] =
        static_cast<uint8_t>(question.rd ? reply[2] | LDNS_RD_MASK : reply[2] & ~LDNS_RD_MASK);
    std::copy(question.name.begin(), question.name.end(), reply.begin() + LDNS_HEADER_SIZE);
    return it->second.outcome;
}

void ReplyCache::insert(const DnsQuery& query, std::span<const uint8_t> reply, Outcome outcome) {
    const auto& name = query.name_wire;
    if (reply.size() < LDNS_HEADER_SIZE + name.size() + 4 || LDNS_QDCOUNT(reply.data()) != 1 ||
        !std::equal(name.begin(), name.end(), reply.begin() + LDNS_HEADER_SIZE))
        return;
    if (entries_.size() >= max_entries_) entries_.clear();
    make_key(name, query.qtype, query.qclass);
    entries_.insert_or_assign(key_, Entry{{reply.begin(), reply.end()}, outcome});
}

}  // namespace nm
