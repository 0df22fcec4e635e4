#pragma once
// DNS messages through libldns: reading a query (with the checks a resolver facing untrusted
// namespaces needs) and writing the replies of the unicast server and the mDNS responder.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

#include "core/address.hpp"

namespace nm {

// Why a query was dropped without an answer (metric label netmanager_dns_dropped_total).
enum class DnsDrop : uint8_t {
    truncated,     // shorter than its header or its sections say
    not_query,     // a response, or an opcode other than QUERY
    counts,        // not exactly one question, or records where a query has none
    compression,   // a compression pointer out of bounds or looping
    bad_label,     // a label or name over its length limit, or an unknown label type
    malformed,     // anything else libldns refuses
    not_local,     // the source is not an app namespace of this node
    rate_limited,  // the source's query rate is over its limit
    overload,      // too many queries already wait (forwarding or table queries)
};
inline constexpr size_t dns_drop_count = 9;
std::string_view to_string(DnsDrop reason);

inline constexpr uint16_t dns_type_a = 1, dns_type_aaaa = 28, dns_type_any = 255;
inline constexpr uint16_t dns_class_in = 1;
inline constexpr uint8_t dns_noerror = 0, dns_servfail = 2, dns_nxdomain = 3, dns_refused = 5;

struct DnsQuery {
    uint16_t id = 0;
    bool rd = false;
    std::string name;                // presentation form without the final dot ("a.b.local")
    std::vector<uint8_t> name_wire;  // the question's name in (uncompressed) wire form
    uint16_t qtype = 0;
    uint16_t qclass = 0;  // as sent: in mDNS the top bit is the QU ("unicast response") bit
};

// One question, no answer or authority records, at most one additional (EDNS OPT).
tl::expected<DnsQuery, DnsDrop> parse_query(std::span<const uint8_t> wire);

// An mDNS query (RFC 6762 5, 7.1): one or more questions (at most `max_questions`), and answer
// records the querier already knows (known-answer suppression) that are read and ignored. The
// same checks as parse_query otherwise; `counts` for no question, too many, or more records than
// the message could hold.
tl::expected<std::vector<DnsQuery>, DnsDrop> parse_mdns_query(std::span<const uint8_t> wire,
                                                              size_t max_questions = 32);

// The question of a plain query, read in place without libldns (the server's fast path): one
// question whose name has no compression pointer, no records but an optional EDNS OPT, nothing
// after. nullopt for anything else, which then takes parse_query. What this accepts, parse_query
// accepts with the same fields (the fuzz target checks it).
struct PlainQuestion {
    uint16_t id = 0;
    bool rd = false;
    std::span<const uint8_t> name;  // wire form, pointing into the message
    uint16_t qtype = 0;
    uint16_t qclass = 0;
};
std::optional<PlainQuestion> scan_plain_query(std::span<const uint8_t> wire);

enum class ReplyStyle {
    unicast,         // an ordinary DNS reply: id, question, RA
    mdns_multicast,  // RFC 6762 6: id 0, no question, cache-flush bit on the answers
    mdns_legacy,     // RFC 6762 6.7: to a one-shot querier: its id and question, TTL <= 10
};

struct DnsReply {
    uint8_t rcode = dns_noerror;
    std::string owner;  // the answers' name; empty: the question's
    std::vector<Ipv4> a;
    std::vector<Ipv6> aaaa;
    uint32_t ttl = 5;
};

// One response answering several questions: replies[i] answers questions[i] (the mDNS
// responder's; for mdns_legacy every question is echoed, id from the first).
std::vector<uint8_t> build_reply(std::span<const DnsQuery> questions,
                                 std::span<const DnsReply> replies, ReplyStyle style);

// The wire form of the reply to `query`: A records for qtype A, AAAA records for AAAA, both for
// ANY; none for other types (the name exists: NOERROR without records).
std::vector<uint8_t> build_reply(const DnsQuery& query, const DnsReply& reply,
                                 ReplyStyle style = ReplyStyle::unicast);

// SERVFAIL for a query that could not be answered (forwarding failed), from its wire form alone;
// empty when the bytes do not even hold a header.
std::vector<uint8_t> servfail_for(std::span<const uint8_t> query);

}  // namespace nm
