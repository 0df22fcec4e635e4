#include "mdns/dns_message.hpp"

#include <cstdlib>
#include <memory>

#include "mdns/ldns.hpp"

namespace nm {

namespace {

struct PktFree {
    void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;

DnsDrop drop_for(ldns_status status) {
    switch (status) {
        case LDNS_STATUS_PACKET_OVERFLOW:
        case LDNS_STATUS_WIRE_INCOMPLETE_HEADER:
        case LDNS_STATUS_WIRE_INCOMPLETE_QUESTION:
        case LDNS_STATUS_WIRE_INCOMPLETE_ANSWER:
        case LDNS_STATUS_WIRE_INCOMPLETE_AUTHORITY:
        case LDNS_STATUS_WIRE_INCOMPLETE_ADDITIONAL:
            return DnsDrop::truncated;
        case LDNS_STATUS_INVALID_POINTER:
            return DnsDrop::compression;
        case LDNS_STATUS_LABEL_OVERFLOW:
        case LDNS_STATUS_DOMAINNAME_OVERFLOW:
        case LDNS_STATUS_DDD_OVERFLOW:
            return DnsDrop::bad_label;
        default:
            return DnsDrop::malformed;
    }
}

// "a.b.local" from a wire-form name; bytes outside [!-~] and dots inside labels escaped (\DDD) so
// that no two names share a presentation form.
std::string presentation(const uint8_t* data, size_t size) {
    std::string out;
    size_t i = 0;
    while (i < size && data[i] != 0) {
        size_t len = data[i++];
        if (!out.empty()) out += '.';
        for (size_t k = 0; k < len && i < size; ++k, ++i) {
            uint8_t c = data[i];
            if (c > 0x20 && c < 0x7f && c != '.' && c != '\\') {
                out += static_cast<char>(c);
            } else {
                char buf[5];
                buf[0] = '\\';
                buf[1] = static_cast<char>('0' + c / 100);
                buf[2] = static_cast<char>('0' + c / 10 % 10);
                buf[3] = static_cast<char>('0' + c % 10);
                buf[4] = 0;
                out += buf;
            }
        }
    }
    return out;
}

ldns_rr* question_rr(const DnsQuery& query) {
    ldns_rr* q = ldns_rr_new();
    ldns_rr_set_owner(q, ldns_dname_new_frm_data(static_cast<uint16_t>(query.name_wire.size()),
                                                 query.name_wire.data()));
    ldns_rr_set_type(q, static_cast<ldns_rr_type>(query.qtype));
    ldns_rr_set_class(q, static_cast<ldns_rr_class>(query.qclass));
    ldns_rr_set_question(q, true);
    return q;
}

// Without name compression: libldns compresses names case-insensitively, so an answer's owner
// would point at the question and lose the job's spelling. Our replies are small.
std::vector<uint8_t> to_wire(const ldns_pkt* pkt) {
    ldns_buffer* buffer = ldns_buffer_new(LDNS_MIN_BUFLEN);
    if (!buffer) return {};
    std::vector<uint8_t> out;
    if (ldns_pkt2buffer_wire_compress(buffer, pkt, nullptr) == LDNS_STATUS_OK) {
        const uint8_t* data = ldns_buffer_begin(buffer);
        out.assign(data, data + ldns_buffer_position(buffer));
    }
    ldns_buffer_free(buffer);
    return out;
}

tl::expected<DnsQuery, DnsDrop> read_question(const ldns_pkt* pkt, const ldns_rr* q) {
    const ldns_rdf* owner = ldns_rr_owner(q);
    if (!owner) return tl::unexpected(DnsDrop::malformed);
    DnsQuery out;
    out.id = ldns_pkt_id(pkt);
    out.rd = ldns_pkt_rd(pkt);
    const uint8_t* data = ldns_rdf_data(owner);
    size_t size = ldns_rdf_size(owner);
    out.name_wire.assign(data, data + size);
    out.name = presentation(data, size);
    out.qtype = static_cast<uint16_t>(ldns_rr_get_type(q));
    out.qclass = static_cast<uint16_t>(ldns_rr_get_class(q));
    return out;
}

// The unicast server's header counts: one question, no records but an EDNS OPT.
bool one_question(const uint8_t* w) {
    return LDNS_QDCOUNT(w) == 1 && LDNS_ANCOUNT(w) == 0 && LDNS_NSCOUNT(w) == 0 &&
           LDNS_ARCOUNT(w) <= 1;
}

// A query's header, then `counts_ok` on its counts (they bound what is read at all), then libldns;
// the packet holds as many questions as its header says.
template <class CountsOk>
tl::expected<PktPtr, DnsDrop> read_packet(std::span<const uint8_t> wire, CountsOk counts_ok) {
    if (wire.size() < LDNS_HEADER_SIZE) return tl::unexpected(DnsDrop::truncated);
    const uint8_t* w = wire.data();
    if (LDNS_QR_WIRE(w) || LDNS_OPCODE_WIRE(w) != LDNS_PACKET_QUERY)
        return tl::unexpected(DnsDrop::not_query);
    if (!counts_ok(w)) return tl::unexpected(DnsDrop::counts);
    ldns_pkt* raw = nullptr;
    ldns_status status = ldns_wire2pkt(&raw, w, wire.size());
    PktPtr pkt(raw);
    if (status != LDNS_STATUS_OK || !pkt) return tl::unexpected(drop_for(status));
    const ldns_rr_list* list = ldns_pkt_question(pkt.get());
    if (!list || ldns_rr_list_rr_count(list) != LDNS_QDCOUNT(w))
        return tl::unexpected(DnsDrop::counts);
    return pkt;
}

}  // namespace

std::string_view to_string(DnsDrop reason) {
    switch (reason) {
        case DnsDrop::truncated:
            return "truncated";
        case DnsDrop::not_query:
            return "not_query";
        case DnsDrop::counts:
            return "counts";
        case DnsDrop::compression:
            return "compression";
        case DnsDrop::bad_label:
            return "bad_label";
        case DnsDrop::malformed:
            return "malformed";
        case DnsDrop::not_local:
            return "not_local";
        case DnsDrop::rate_limited:
            return "rate_limited";
        case DnsDrop::overload:
            return "overload";
    }
    return "unknown";
}

tl::expected<DnsQuery, DnsDrop> parse_query(std::span<const uint8_t> wire) {
    auto pkt = read_packet(wire, one_question);
    if (!pkt) return tl::unexpected(pkt.error());
    return read_question(pkt->get(), ldns_rr_list_rr(ldns_pkt_question(pkt->get()), 0));
}

tl::expected<std::vector<DnsQuery>, DnsDrop> parse_mdns_query(std::span<const uint8_t> wire,
                                                              size_t max_questions) {
    // A question takes at least 5 bytes, a record at least 11: counts past that are lies.
    auto pkt = read_packet(wire, [&](const uint8_t* w) {
        const size_t questions = LDNS_QDCOUNT(w);
        const size_t records = size_t{LDNS_ANCOUNT(w)} + LDNS_NSCOUNT(w) + LDNS_ARCOUNT(w);
        return questions > 0 && questions <= max_questions &&
               questions * 5 + records * 11 <= wire.size() - LDNS_HEADER_SIZE;
    });
    if (!pkt) return tl::unexpected(pkt.error());
    const ldns_rr_list* list = ldns_pkt_question(pkt->get());
    std::vector<DnsQuery> out;
    for (size_t i = 0; i < ldns_rr_list_rr_count(list); ++i) {
        auto q = read_question(pkt->get(), ldns_rr_list_rr(list, i));
        if (!q) return tl::unexpected(q.error());
        out.push_back(std::move(*q));
    }
    return out;
}

std::optional<PlainQuestion> scan_plain_query(std::span<const uint8_t> wire) {
    const size_t size = wire.size();
    const uint8_t* w = wire.data();
    if (size < LDNS_HEADER_SIZE || LDNS_QR_WIRE(w) || LDNS_OPCODE_WIRE(w) != LDNS_PACKET_QUERY ||
        !one_question(w))
        return std::nullopt;
    size_t i = LDNS_HEADER_SIZE;
    // Plain labels only (no pointer, no extended type), the name within 255 bytes with its root.
    while (i < size && w[i] != 0) {
        if (w[i] > LDNS_MAX_LABELLEN) return std::nullopt;
        i += size_t{w[i]} + 1;
        if (i - LDNS_HEADER_SIZE >= LDNS_MAX_DOMAINLEN) return std::nullopt;
    }
    if (i + 5 > size) return std::nullopt;
    PlainQuestion q;
    q.id = ldns_read_uint16(w);
    q.rd = LDNS_RD_WIRE(w);
    q.name = wire.subspan(LDNS_HEADER_SIZE, i + 1 - LDNS_HEADER_SIZE);
    q.qtype = ldns_read_uint16(w + i + 1);
    q.qclass = ldns_read_uint16(w + i + 3);
    i += 5;
    if (LDNS_ARCOUNT(w) == 1) {
        // EDNS: the root name, type OPT, class, TTL, and exactly its data up to the end.
        if (i + 11 > size || w[i] != 0 || ldns_read_uint16(w + i + 1) != LDNS_RR_TYPE_OPT)
            return std::nullopt;
        i += 11 + size_t{ldns_read_uint16(w + i + 9)};
    }
    if (i != size) return std::nullopt;
    return q;
}

std::vector<uint8_t> build_reply(std::span<const DnsQuery> questions,
                                 std::span<const DnsReply> replies, ReplyStyle style) {
    PktPtr pkt(ldns_pkt_new());
    if (!pkt || questions.empty() || replies.size() != questions.size()) return {};
    const DnsQuery& first = questions.front();
    const bool mdns = style != ReplyStyle::unicast;
    ldns_pkt_set_id(pkt.get(), style == ReplyStyle::mdns_multicast ? 0 : first.id);
    ldns_pkt_set_qr(pkt.get(), true);
    ldns_pkt_set_aa(pkt.get(), true);
    ldns_pkt_set_rd(pkt.get(), !mdns && first.rd);
    ldns_pkt_set_ra(pkt.get(), !mdns);
    ldns_pkt_set_rcode(pkt.get(), replies.front().rcode);
    for (size_t i = 0; i < questions.size(); ++i) {
        const DnsQuery& query = questions[i];
        const DnsReply& reply = replies[i];
        if (style != ReplyStyle::mdns_multicast) {
            ldns_rr* q = question_rr(query);
            // A legacy querier gets its question back without the QU bit.
            if (mdns) ldns_rr_set_class(q, static_cast<ldns_rr_class>(query.qclass & 0x7fff));
            ldns_pkt_push_rr(pkt.get(), LDNS_SECTION_QUESTION, q);
        }
        if (reply.rcode != dns_noerror) continue;
        const uint16_t qtype = query.qtype;
        const uint32_t ttl =
            style == ReplyStyle::mdns_legacy ? std::min(reply.ttl, 10u) : reply.ttl;
        uint16_t rclass = dns_class_in;
        if (style == ReplyStyle::mdns_multicast) rclass |= 0x8000;  // cache flush: unique record
        auto push = [&](ldns_rr_type type, ldns_rdf_type rdf_type, size_t size, const void* data) {
            ldns_rdf* owner =
                reply.owner.empty()
                    ? ldns_dname_new_frm_data(static_cast<uint16_t>(query.name_wire.size()),
                                              query.name_wire.data())
                    : ldns_dname_new_frm_str(reply.owner.c_str());
            if (!owner) return;
            ldns_rr* rr = ldns_rr_new();
            ldns_rr_set_owner(rr, owner);
            ldns_rr_set_type(rr, type);
            ldns_rr_set_class(rr, static_cast<ldns_rr_class>(rclass));
            ldns_rr_set_ttl(rr, ttl);
            ldns_rr_push_rdf(rr, ldns_rdf_new_frm_data(rdf_type, size, data));
            ldns_pkt_push_rr(pkt.get(), LDNS_SECTION_ANSWER, rr);
        };
        if (qtype == dns_type_a || qtype == dns_type_any)
            for (Ipv4 ip : reply.a) {
                const uint32_t net = ip.network_order();
                push(LDNS_RR_TYPE_A, LDNS_RDF_TYPE_A, 4, &net);
            }
        if (qtype == dns_type_aaaa || qtype == dns_type_any)
            for (const Ipv6& ip : reply.aaaa)
                push(LDNS_RR_TYPE_AAAA, LDNS_RDF_TYPE_AAAA, ip.bytes.size(), ip.bytes.data());
    }
    return to_wire(pkt.get());
}

std::vector<uint8_t> build_reply(const DnsQuery& query, const DnsReply& reply, ReplyStyle style) {
    return build_reply(std::span<const DnsQuery>(&query, 1), std::span<const DnsReply>(&reply, 1),
                       style);
}

std::vector<uint8_t> servfail_for(std::span<const uint8_t> query) {
    if (query.size() < LDNS_HEADER_SIZE) return {};
    auto parsed = parse_query(query);
    if (!parsed) return {};
    DnsReply reply;
    reply.rcode = dns_servfail;
    return build_reply(*parsed, reply);
}

}  // namespace nm
