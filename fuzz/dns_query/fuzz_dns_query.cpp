// libFuzzer target over the names server's query path: parse (libldns), then answer from a
// fixed names index as the unicast server and the mDNS responder would. Besides sanitizer
// reports it checks that every reply it writes parses back as a response to the same id, that
// the fast path's scan accepts only what parse_query accepts and reads the same fields, and that
// a reply from the reply cache is byte for byte the reply build_reply writes.
#include <algorithm>
#include <cstdlib>
#include <span>

#include "mdns/dns_message.hpp"
#include "mdns/ldns.hpp"
#include "mdns/names_index.hpp"
#include "mdns/reply_cache.hpp"

using namespace nm;

namespace {

TableEntry entry(const char* service, int instance) {
    TableEntry e;
    e.appname = "App";
    e.appns = "ns";
    e.servicename = service;
    e.servicenamespace = "default";
    e.instancenumber = instance;
    e.nodeip = Ipv4{0x0afa0001};
    e.nodeport = 50103;
    e.nsip = Ipv4{0x0a12010a + static_cast<uint32_t>(instance)};
    e.serviceip = {{IpType::RR, Ipv4{0x0a1e0001}},
                   {IpType::Closest, Ipv4{0x0a1e0002}},
                   {IpType::InstanceNumber, Ipv4{0x0a1e0100 + static_cast<uint32_t>(instance)}}};
    return e;
}

struct World {
    TranslationTable table;
    NamesIndex index;
    World() {
        for (int i = 0; i < 3; ++i) table.upsert(entry("web", i));
        index.rebuild(table);
    }
};

void check_reply(const std::vector<uint8_t>& wire, const DnsQuery& q, ReplyStyle style) {
    if (wire.empty()) return;
    ldns_pkt* p = nullptr;
    if (ldns_wire2pkt(&p, wire.data(), wire.size()) != LDNS_STATUS_OK) std::abort();
    const uint16_t want = style == ReplyStyle::mdns_multicast ? 0 : q.id;
    if (!ldns_pkt_qr(p) || ldns_pkt_id(p) != want) std::abort();
    ldns_pkt_free(p);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static World world;
    // An exact-size heap copy: any read past the message is an ASan report.
    std::vector<uint8_t> bytes(data, data + size);
    auto query = parse_query(std::span<const uint8_t>(bytes));
    auto plain = scan_plain_query(bytes);
    if (plain && (!query || plain->id != query->id || plain->rd != query->rd ||
                  plain->qtype != query->qtype || plain->qclass != query->qclass ||
                  !std::equal(plain->name.begin(), plain->name.end(), query->name_wire.begin(),
                              query->name_wire.end())))
        std::abort();
    // The mDNS responder's reading: several questions, known answers; one response for all.
    if (auto questions = parse_mdns_query(bytes)) {
        std::vector<DnsReply> replies(questions->size());
        for (auto& r : replies) r.a = {Ipv4{0x0a1e0001}};
        for (auto style : {ReplyStyle::mdns_multicast, ReplyStyle::mdns_legacy})
            check_reply(build_reply(*questions, replies, style), questions->front(), style);
    }
    if (!query) return 0;
    DnsReply reply;
    if (auto name = parse_name(query->name)) {
        if (const JobNames* job = world.index.find(name->job); job && name_exists(*job, *name)) {
            reply.owner = answer_name(*job, *name);
            reply.a = addresses(*job, *name);
            reply.aaaa = addresses_v6(*job, *name);
        } else {
            reply.rcode = dns_nxdomain;
        }
    } else {
        reply.rcode = is_local_name(query->name) ? dns_nxdomain : dns_servfail;
    }
    if (plain) {
        // Cached under another spelling and id (a query answered before), found for this one.
        DnsQuery other = *query;
        other.id = static_cast<uint16_t>(query->id + 1);
        other.rd = !query->rd;
        for (auto& c : other.name_wire)
            if (c >= 'a' && c <= 'z') c = static_cast<uint8_t>(c - 'a' + 'A');
        ReplyCache cache;
        cache.insert(other, build_reply(other, reply), ReplyCache::Outcome::answered);
        std::vector<uint8_t> cached;
        if (!cache.find(*plain, cached) || cached != build_reply(*query, reply)) std::abort();
    }
    for (auto style : {ReplyStyle::unicast, ReplyStyle::mdns_multicast, ReplyStyle::mdns_legacy})
        check_reply(build_reply(*query, reply, style), *query, style);
    check_reply(servfail_for(bytes), *query, ReplyStyle::unicast);
    return 0;
}
