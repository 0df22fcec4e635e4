// DNS messages through libldns: queries read, malformed ones refused by reason, replies written.
#include "mdns/dns_message.hpp"

#include <catch2/catch.hpp>

#include "mdns_testkit.hpp"

using namespace nm;
using namespace nm::testkit;

TEST_CASE("a stub resolver's query is read with its id, name, type and class") {
    auto q = parse_query(query_wire("Web.Default.App.ns.local.", LDNS_RR_TYPE_A, 0xbeef));
    REQUIRE(q);
    CHECK(q->id == 0xbeef);
    CHECK(q->rd);
    CHECK(q->name == "Web.Default.App.ns.local");
    CHECK(q->qtype == dns_type_a);
    CHECK(q->qclass == dns_class_in);
}

TEST_CASE("malformed queries are refused with the reason they are counted under") {
    auto good = query_wire("web.default.app.ns.local.");
    auto reason = [](std::vector<uint8_t> w) {
        auto q = parse_query(w);
        REQUIRE_FALSE(q);
        return q.error();
    };
    CHECK(reason({0x12, 0x34, 0x01}) == DnsDrop::truncated);
    auto cut = good;
    cut.resize(cut.size() - 3);  // the question's type and class are cut off
    CHECK(reason(cut) == DnsDrop::truncated);
    auto response = good;
    response[2] |= 0x80;  // QR: a response, not a query
    CHECK(reason(response) == DnsDrop::not_query);
    auto many = good;
    many[4] = 0xff;  // 65280+ questions claimed
    CHECK(reason(many) == DnsDrop::counts);
    auto answers = good;
    answers[7] = 1;  // an answer record in a query
    CHECK(reason(answers) == DnsDrop::counts);
    // A name that is a compression pointer to itself (offset 12).
    std::vector<uint8_t> loop = {0x12, 0x34, 0x01, 0x00, 0,    1,    0,    0,    0,
                                 0,    0,    0,    0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01};
    CHECK(reason(loop) == DnsDrop::compression);
    // A pointer past the end of the message.
    std::vector<uint8_t> far = {0x12, 0x34, 0x01, 0x00, 0,    1,    0,    0,    0,
                                0,    0,    0,    0xc0, 0xff, 0x00, 0x01, 0x00, 0x01};
    CHECK(reason(far) == DnsDrop::compression);
    // Label type 0x40 (extended label types, never valid in a query).
    std::vector<uint8_t> label = {0x12, 0x34, 0x01, 0x00, 0,    1,    0,    0,    0,   0,
                                  0,    0,    0x41, 'a',  0x00, 0x00, 0x01, 0x00, 0x01};
    DnsDrop r = reason(label);
    CHECK((r == DnsDrop::bad_label || r == DnsDrop::compression || r == DnsDrop::malformed));
    // A name longer than 255 bytes.
    std::vector<uint8_t> longname = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 5; ++i) {
        longname.push_back(63);
        longname.insert(longname.end(), 63, 'a');
    }
    longname.insert(longname.end(), {0x00, 0x00, 0x01, 0x00, 0x01});
    CHECK(reason(longname) == DnsDrop::bad_label);
}

TEST_CASE("a reply carries the id, the question and A records under the given owner name") {
    auto q = parse_query(query_wire("web.default.app.ns.local.", LDNS_RR_TYPE_A, 7));
    REQUIRE(q);
    DnsReply r;
    r.owner = "Web.default.App.ns.local";
    r.a = {ip("10.30.0.1")};
    r.ttl = 5;
    auto a = read_answer(build_reply(*q, r));
    CHECK(a.rcode == LDNS_RCODE_NOERROR);
    CHECK(a.id == 7);
    CHECK(a.aa);
    CHECK(a.questions == 1);
    CHECK(a.owners == std::vector<std::string>{"Web.default.App.ns.local."});
    CHECK(a.addresses == std::vector<std::string>{"10.30.0.1"});
    CHECK(a.ttl == 5);
    // AAAA for a name with only IPv4 addresses: the name exists, no records.
    auto aaaa = parse_query(query_wire("web.default.app.ns.local.", LDNS_RR_TYPE_AAAA));
    REQUIRE(aaaa);
    auto none = read_answer(build_reply(*aaaa, r));
    CHECK(none.rcode == LDNS_RCODE_NOERROR);
    CHECK(none.addresses.empty());
}

TEST_CASE("AAAA questions get the IPv6 addresses, A the IPv4 ones and ANY both") {
    DnsReply r;
    r.owner = "Web.default.App.ns.local";
    r.a = {ip("10.30.0.1")};
    r.aaaa = {*Ipv6::parse("fdff:2000::1")};
    auto answer = [&](uint16_t type) {
        auto q = parse_query(query_wire("web.default.app.ns.local.", type));
        REQUIRE(q);
        return read_answer(build_reply(*q, r)).addresses;
    };
    CHECK(answer(LDNS_RR_TYPE_AAAA) == std::vector<std::string>{"fdff:2000::1"});
    CHECK(answer(LDNS_RR_TYPE_A) == std::vector<std::string>{"10.30.0.1"});
    CHECK(answer(LDNS_RR_TYPE_ANY) == std::vector<std::string>{"10.30.0.1", "fdff:2000::1"});
    CHECK(answer(LDNS_RR_TYPE_TXT).empty());
}

TEST_CASE("mDNS multicast responses have id 0, no question and the cache-flush bit") {
    auto q = parse_query(query_wire("web.default.app.ns.local.", LDNS_RR_TYPE_A, 9, 0x8001));
    REQUIRE(q);
    CHECK(q->qclass == 0x8001);  // the QU bit is kept for the responder to see
    DnsReply r;
    r.a = {ip("10.30.0.1")};
    r.ttl = 120;
    auto wire = build_reply(*q, r, ReplyStyle::mdns_multicast);
    auto a = read_answer(wire);
    CHECK(a.id == 0);
    CHECK(a.questions == 0);
    REQUIRE(a.addresses.size() == 1);
    CHECK(a.rclass == 0x8001);  // IN with cache-flush: the record is ours alone
    auto legacy = read_answer(build_reply(*q, r, ReplyStyle::mdns_legacy));
    CHECK(legacy.id == 9);
    CHECK(legacy.questions == 1);
    CHECK(legacy.ttl == 10);
    CHECK(legacy.rclass == dns_class_in);  // RFC 6762 6.7: at most 10 s to a one-shot querier
}

TEST_CASE("a plain query is scanned in place with the fields parse_query reads") {
    auto wire = query_wire("Web.Default.App.ns.local.", LDNS_RR_TYPE_AAAA, 0xbeef);
    auto plain = scan_plain_query(wire);
    auto parsed = parse_query(wire);
    REQUIRE(plain);
    REQUIRE(parsed);
    CHECK(plain->id == 0xbeef);
    CHECK(plain->rd);
    CHECK(plain->qtype == dns_type_aaaa);
    CHECK(plain->qclass == dns_class_in);
    CHECK(std::vector<uint8_t>(plain->name.begin(), plain->name.end()) == parsed->name_wire);
    // With an EDNS OPT record (as dig sends it: a cookie option) it is still plain.
    std::vector<uint8_t> edns = wire;
    edns[11] = 1;  // ARCOUNT
    edns.insert(edns.end(), {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 12, 0, 10, 0, 8});
    edns.insert(edns.end(), 8, 0xab);
    REQUIRE(parse_query(edns));
    CHECK(scan_plain_query(edns));
}

TEST_CASE("anything but a plain query is left to parse_query") {
    auto wire = query_wire("web.default.app.ns.local.");
    auto trailing = wire;
    trailing.push_back(0);
    CHECK_FALSE(scan_plain_query(trailing));
    auto cut = wire;
    cut.pop_back();
    CHECK_FALSE(scan_plain_query(cut));
    auto response = wire;
    response[2] |= 0x80;
    CHECK_FALSE(scan_plain_query(response));
    std::vector<uint8_t> pointer = {0x12, 0x34, 0x01, 0x00, 0,    1,    0,    0,    0,
                                    0,    0,    0,    0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01};
    CHECK_FALSE(scan_plain_query(pointer));
    auto bad_opt = wire;
    bad_opt[11] = 1;
    bad_opt.insert(bad_opt.end(), {0, 0, 1, 0x04, 0xd0, 0, 0, 0, 0, 0, 0});  // type A, not OPT
    CHECK_FALSE(scan_plain_query(bad_opt));
}

TEST_CASE("an mDNS query may ask several questions and list known answers") {
    // Two questions, the second's name compressed against the first, and one known answer.
    std::vector<uint8_t> wire = {0, 0, 0, 0, 0, 2, 0, 1, 0, 0, 0, 0};
    auto name = query_wire("web.default.app.ns.local.");
    wire.insert(wire.end(), name.begin() + 12, name.end() - 4);
    wire.insert(wire.end(), {0, 1, 0x80, 1});  // A, QU
    wire.insert(wire.end(), {7, 'c', 'l', 'o', 's', 'e', 's', 't', 0xc0, 12, 0, 28, 0, 1});
    wire.insert(wire.end(), {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 30, 0, 1});
    auto questions = parse_mdns_query(wire);
    REQUIRE(questions);
    REQUIRE(questions->size() == 2);
    CHECK((*questions)[0].name == "web.default.app.ns.local");
    CHECK((*questions)[0].qclass == 0x8001);
    CHECK((*questions)[1].name == "closest.web.default.app.ns.local");
    CHECK((*questions)[1].qtype == dns_type_aaaa);
    CHECK_FALSE(parse_query(wire));  // the unicast server takes one question, no records
    // Answered in one response, each question's records under its own owner.
    std::vector<DnsReply> replies(2);
    replies[0].owner = "Web.default.App.ns.local";
    replies[0].a = {ip("10.30.0.1")};
    replies[1].owner = "closest.Web.default.App.ns.local";
    replies[1].aaaa = {*Ipv6::parse("fdff::2")};
    auto a = read_answer(build_reply(*questions, replies, ReplyStyle::mdns_multicast));
    CHECK(a.questions == 0);
    CHECK(a.addresses == std::vector<std::string>{"10.30.0.1", "fdff::2"});
    // Counts the message cannot hold, and no question at all, are refused.
    auto lying = wire;
    lying[5] = 40;
    CHECK(parse_mdns_query(lying).error() == DnsDrop::counts);
    auto none = wire;
    none[5] = 0;
    CHECK(parse_mdns_query(none).error() == DnsDrop::counts);
    CHECK(parse_mdns_query(wire, 1).error() == DnsDrop::counts);
}
