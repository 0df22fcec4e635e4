// The data path's decisions for IPv6 (protocol.md "Data path": the same translation and
// policies as IPv4), on two simulated dual-stack nodes: A (10.0.0.1, 172.19.1.0/24 and
// fc00::100/120) and B (10.0.0.2, 172.19.2.0/24 and fc00::200/120).
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>

#include "core/checksum.hpp"
#include "decision_testkit.hpp"
#include "tunnel/flow_owner.hpp"

using namespace nm;
using namespace nm::test;

namespace {

TranslationTable dual_stack_table() {
    TranslationTable t;
    t.upsert(
        with_v6(entry("cli", 0, "172.19.1.2", "10.0.0.1", {{IpType::InstanceNumber, "172.30.1.0"}}),
                "fc00::102", {"fdff::100"}));
    t.upsert(with_v6(entry("web", 0, "172.19.2.2", "10.0.0.2",
                           {{IpType::RR, "172.30.0.10"},
                            {IpType::Closest, "172.30.0.11"},
                            {IpType::InstanceNumber, "172.30.2.0"}}),
                     "fc00::202", {"fdff:2000::10", "fdff:2000::11", "fdff::200"}));
    t.upsert(with_v6(entry("web", 1, "172.19.1.3", "10.0.0.1",
                           {{IpType::RR, "172.30.0.10"},
                            {IpType::Closest, "172.30.0.11"},
                            {IpType::InstanceNumber, "172.30.2.1"}}),
                     "fc00::103", {"fdff:2000::10", "fdff:2000::11", "fdff::201"}));
    t.upsert(
        with_v6(entry("db", 0, "172.19.2.5", "10.0.0.2", {{IpType::InstanceNumber, "172.30.3.0"}}),
                "fc00::205", {"fdff::300"}));
    // IPv4 only (no nsipv6): its IPv6 ServiceIP reaches nobody.
    auto old = entry("old", 0, "172.19.2.9", "10.0.0.2", {{IpType::RR, "172.30.0.20"}});
    old.serviceip[0].address_v6 = ip6("fdff:2000::20");
    t.upsert(old);
    // An IPv6 sender without an IPv6 InstanceNumber ServiceIP.
    t.upsert(with_v6(
        entry("anon", 0, "172.19.1.9", "10.0.0.1", {{IpType::InstanceNumber, "172.30.5.0"}}),
        "fc00::109", {}));
    return t;
}

struct Node : DecisionNode {
    Node(const char* node_ip, const char* subnet, const char* subnet_v6)
        : DecisionNode(dual_stack_table(), node_ip, subnet, subnet_v6) {}
};
Node node_a() {
    return Node("10.0.0.1", "172.19.1.0", "fc00::100");
}
Node node_b() {
    return Node("10.0.0.2", "172.19.2.0", "fc00::200");
}

PacketSpec6 spec6(const char* src, uint16_t sport, const char* dst, uint16_t dport,
                  uint8_t proto = ipproto::tcp) {
    return {.protocol = proto,
            .source = src,
            .destination = dst,
            .source_port = sport,
            .destination_port = dport};
}
std::vector<uint8_t> packet6(const char* src, uint16_t sport, const char* dst, uint16_t dport,
                             uint8_t proto = ipproto::tcp) {
    return build6(spec6(src, sport, dst, dport, proto));
}

Ipv6 src_of(std::vector<uint8_t>& b) {
    return view(b).source_v6();
}
Ipv6 dst_of(std::vector<uint8_t>& b) {
    return view(b).destination_v6();
}

}  // namespace

TEST_CASE("a new IPv6 flow to an RR ServiceIP is rewritten to the instance's nsipv6 and sent") {
    auto proto = GENERATE(ipproto::tcp, ipproto::udp);
    Node a = node_a();
    auto p = packet6("fc00::102", 40000, "fdff:2000::10", 80, proto);
    CHECK(out(a, p) == Decision{to_b});
    CHECK(dst_of(p) == ip6("fc00::202"));  // the chosen instance's nsipv6
    CHECK(src_of(p) == ip6("fdff::100"));  // the sender's InstanceNumber ServiceIP (IPv6)
    CHECK(checksums_ok(p));
    CHECK(a.counters.outgoing_new_flows == 1);
    CHECK(a.counters.dropped_total() == 0);
}

TEST_CASE("IPv6 flows to an RR ServiceIP take turns and each keeps its instance, as IPv4 ones") {
    Node a = node_a();
    std::vector<Decision> firsts;
    for (uint16_t port = 1; port <= 4; ++port) {
        auto p = packet6("fc00::102", port, "fdff:2000::10", 80);
        firsts.push_back(out(a, p));
    }
    CHECK(firsts == std::vector<Decision>{to_b, DeliverLocal{}, to_b, DeliverLocal{}});
    for (int again = 0; again < 3; ++again) {
        auto p = packet6("fc00::102", 1, "fdff:2000::10", 80);
        CHECK(out(a, p) == Decision{to_b});
        CHECK(dst_of(p) == ip6("fc00::202"));
        auto q = packet6("fc00::102", 2, "fdff:2000::10", 80);
        CHECK(out(a, q) == Decision{DeliverLocal{}});
        CHECK(dst_of(q) == ip6("fc00::103"));
    }
    CHECK(a.counters.outgoing_cached == 6);
    CHECK(a.cache.counters().hits == 6);
}

TEST_CASE("an IPv6 instance ServiceIP and a Closest one choose as for IPv4") {
    Node a = node_a();
    auto p = packet6("fc00::102", 1, "fdff::300", 5432);
    CHECK(out(a, p) == Decision{to_b});
    CHECK(dst_of(p) == ip6("fc00::205"));
    // Closest: the instance on this node wins.
    for (uint16_t port = 1; port <= 3; ++port) {
        auto q = packet6("fc00::102", port, "fdff:2000::11", 80);
        CHECK(out(a, q) == Decision{DeliverLocal{}});
        CHECK(dst_of(q) == ip6("fc00::103"));
    }
}

TEST_CASE("an IPv6 reply crosses back and the client sees the IPv6 ServiceIP it addressed") {
    auto proto = GENERATE(ipproto::tcp, ipproto::udp, ipproto::icmpv6);
    Node a = node_a();
    Node b = node_b();
    // Client on A -> web 0 on B through the RR ServiceIP (echo: identifier as both ports).
    auto p = proto == ipproto::icmpv6 ? build6({.protocol = proto,
                                                .source = "fc00::102",
                                                .destination = "fdff:2000::10",
                                                .source_port = 777})
                                      : packet6("fc00::102", 40000, "fdff:2000::10", 80, proto);
    const unsigned owner = owner_shard(view(p), 4);
    CHECK(out(a, p) == Decision{to_b});
    CHECK(checksums_ok(p));
    CHECK(in(b, p) == Decision{DeliverLocal{}});  // B delivers it unchanged
    CHECK(dst_of(p) == ip6("fc00::202"));
    // The server answers its peer (the client's instance ServiceIP) from its own nsipv6.
    auto reply = proto == ipproto::icmpv6 ? build6({.protocol = proto,
                                                    .source = "fc00::202",
                                                    .destination = "fdff::100",
                                                    .source_port = 777,
                                                    .icmp_type = 129})
                                          : packet6("fc00::202", 80, "fdff::100", 40000, proto);
    CHECK(owner_shard(view(reply), 4) == owner);  // both directions on one shard
    CHECK(out(b, reply) == Decision{to_a});
    CHECK(src_of(reply) == ip6("fdff::200"));  // B: from web 0's instance ServiceIP
    CHECK(dst_of(reply) == ip6("fc00::102"));
    CHECK(in(a, reply) == Decision{DeliverLocal{}});
    CHECK(src_of(reply) == ip6("fdff:2000::10"));  // A: as the ServiceIP the client addressed
    CHECK(checksums_ok(reply));
    CHECK(a.counters.incoming_translated == 1);
}

TEST_CASE("IPv4 and IPv6 flows of one app with the same ports are kept apart") {
    Node a = node_a();
    auto v6 = packet6("fc00::102", 5000, "fdff:2000::10", 80);
    auto v4 = build({.source = ip("172.19.1.2"),
                     .destination = ip("172.30.0.10"),
                     .source_port = 5000,
                     .destination_port = 80});
    CHECK(out(a, v6) == Decision{to_b});
    CHECK(out(a, v4) == Decision{to_b});  // IPv4 turns are their own: web 0 first as well
    CHECK(a.cache.size() == 2);
    auto v6again = packet6("fc00::102", 5000, "fdff:2000::10", 80);
    CHECK(out(a, v6again) == Decision{to_b});
    CHECK(dst_of(v6again) == ip6("fc00::202"));
    CHECK(view(v4).destination() == ip("172.19.2.2"));
}

TEST_CASE("extension headers are walked and the packet behind them is translated") {
    const auto chain = GENERATE(
        std::vector<uint8_t>{ipproto::hop_by_hop},
        std::vector<uint8_t>{ipproto::hop_by_hop, ipproto::routing, ipproto::destination_options},
        std::vector<uint8_t>{ipproto::destination_options});
    Node a = node_a();
    auto spec = spec6("fc00::102", 4444, "fdff::300", 53, ipproto::udp);
    spec.extensions = chain;
    auto p = build6(spec);
    CHECK(view(p).protocol() == ipproto::udp);
    CHECK(view(p).source_port() == 4444);
    CHECK(out(a, p) == Decision{to_b});
    CHECK(dst_of(p) == ip6("fc00::205"));
    CHECK(checksums_ok(p));
}

TEST_CASE("IPv6 fragments: the first goes by its ports, later ones only to an instance ServiceIP") {
    Node a = node_a();
    const std::vector<uint8_t> frag{ipproto::fragment};
    // To an instance ServiceIP both fragments reach it.
    auto first = build6({.protocol = ipproto::udp,
                         .source = "fc00::102",
                         .destination = "fdff::300",
                         .extensions = frag,
                         .more_fragments = true,
                         .payload = 64});
    CHECK(view(first).fragment() == Fragment::first);
    CHECK(view(first).fragment_id() == 0x1234);
    CHECK(out(a, first) == Decision{to_b});
    auto later = build6({.protocol = ipproto::udp,
                         .source = "fc00::102",
                         .destination = "fdff::300",
                         .extensions = frag,
                         .fragment_offset = 9,
                         .payload = 32});
    CHECK(view(later).fragment() == Fragment::non_first);
    CHECK_FALSE(view(later).has_ports());
    CHECK(out(a, later) == Decision{to_b});
    CHECK(dst_of(later) == ip6("fc00::205"));
    CHECK(src_of(later) == ip6("fdff::100"));
    CHECK(a.counters.fragments_forwarded == 1);
    // To an RR ServiceIP a later fragment names no instance: dropped, counted.
    auto rr_later = build6({.protocol = ipproto::udp,
                            .source = "fc00::102",
                            .destination = "fdff:2000::10",
                            .extensions = frag,
                            .fragment_offset = 9});
    CHECK(out(a, rr_later) == Decision{Drop{DropReason::fragment}});
    CHECK(a.counters.dropped(DropReason::fragment) == 1);
}

TEST_CASE("with fragment flows a later fragment to RR goes its first fragment's way") {
    Node a = node_a();
    FragmentFlows fragments;
    a.path.fragments = &fragments;
    const std::vector<uint8_t> frag{ipproto::fragment};
    auto first = build6({.protocol = ipproto::udp,
                         .source = "fc00::102",
                         .destination = "fdff:2000::10",
                         .extensions = frag,
                         .more_fragments = true,
                         .fragment_id = 0x77,
                         .payload = 64});
    const Decision way = out(a, first);
    REQUIRE((way == Decision{to_b} || way == Decision{DeliverLocal{}}));
    auto later = build6({.protocol = ipproto::udp,
                         .source = "fc00::102",
                         .destination = "fdff:2000::10",
                         .extensions = frag,
                         .fragment_offset = 9,
                         .fragment_id = 0x77,
                         .payload = 32});
    CHECK(out(a, later) == way);
    CHECK(dst_of(later) == dst_of(first));  // the instance RR chose for the first
    CHECK(src_of(later) == ip6("fdff::100"));
    CHECK(a.counters.fragments_forwarded == 1);
    // A later fragment of another datagram, whose first fragment went by unseen: dropped, counted.
    auto stray = build6({.protocol = ipproto::udp,
                         .source = "fc00::102",
                         .destination = "fdff:2000::10",
                         .extensions = frag,
                         .fragment_offset = 9,
                         .fragment_id = 0x78});
    CHECK(out(a, stray) == Decision{Drop{DropReason::fragment}});
    CHECK(a.counters.dropped(DropReason::fragment) == 1);
}

TEST_CASE("a fragmented reply through RR reaches the client from the ServiceIP it addressed") {
    Node a = node_a();
    FragmentFlows fragments;
    a.path.fragments = &fragments;
    // RR takes turns: a flow whose instance is on node B.
    uint16_t port = 5000;
    for (;; ++port) {
        REQUIRE(port < 5004);
        auto p = packet6("fc00::102", port, "fdff:2000::10", 53, ipproto::udp);
        if (out(a, p) == Decision{to_b}) break;
    }
    const std::vector<uint8_t> frag{ipproto::fragment};
    auto reply = [&](uint16_t offset, uint32_t id) {
        return build6({.protocol = ipproto::udp,
                       .source = "fdff::200",  // the instance's InstanceNumber ServiceIP
                       .destination = "fc00::102",
                       .source_port = 53,
                       .destination_port = port,
                       .extensions = frag,
                       .fragment_offset = offset,
                       .more_fragments = offset == 0,
                       .fragment_id = id,
                       .payload = 64});
    };
    auto first = reply(0, 0x99);
    CHECK(in(a, first) == Decision{DeliverLocal{}});
    CHECK(src_of(first) == ip6("fdff:2000::10"));
    auto later = reply(9, 0x99);
    CHECK(in(a, later) == Decision{DeliverLocal{}});
    CHECK(src_of(later) == ip6("fdff:2000::10"));
    CHECK(a.counters.fragments_forwarded == 1);
    // Another datagram's later fragment is delivered as it came.
    auto other = reply(9, 0x9a);
    CHECK(in(a, other) == Decision{DeliverLocal{}});
    CHECK(src_of(other) == ip6("fdff::200"));
}

TEST_CASE("a later fragment is owned where its first fragment was, for a while") {
    FragmentFlows fragments(2);
    const std::vector<uint8_t> frag{ipproto::fragment};
    auto first = build6({.protocol = ipproto::udp, .extensions = frag, .more_fragments = true});
    auto later = build6({.protocol = ipproto::udp, .extensions = frag, .fragment_offset = 9});
    auto whole = build6({.protocol = ipproto::udp});
    CHECK(fragments.owner(view(later), true, 0, 10) == 0);  // nothing known: its own hash
    CHECK(fragments.owner(view(first), true, 3, 10) == 3);  // the first's flow owner
    CHECK(fragments.owner(view(later), true, 0, 20) == 3);
    CHECK(fragments.owner(view(later), false, 0, 20) == 0);  // the other direction's are apart
    CHECK(fragments.owner(view(whole), true, 1, 20) == 1);
    CHECK(fragments.owner(view(later), true, 0, 20 + FragmentFlows::kLifetimeMs) == 0);
    // Bounded: a third datagram starts the table over.
    auto other = build6(
        {.protocol = ipproto::udp, .extensions = frag, .more_fragments = true, .fragment_id = 7});
    CHECK(fragments.owner(view(other), false, 1, 30) == 1);
    CHECK(fragments.owner(view(first), false, 2, 30) == 2);
    CHECK(fragments.size() <= 2);
}

TEST_CASE("IPv6 packets nobody can take are dropped with their reason counted") {
    Node a = node_a();
    auto expect = [&](std::vector<uint8_t> p, DropReason reason) {
        Node fresh = node_a();
        CHECK(out(fresh, p) == Decision{Drop{reason}});
        CHECK(fresh.counters.dropped(reason) == 1);
        CHECK(fresh.counters.dropped_total() == 1);
    };
    SECTION("an IPv6 ServiceIP whose only instance has no nsipv6") {
        expect(packet6("fc00::102", 1, "fdff:2000::20", 80), DropReason::no_nsipv6);
    }
    SECTION("a sender without an IPv6 InstanceNumber ServiceIP") {
        expect(packet6("fc00::109", 1, "fdff:2000::10", 80), DropReason::no_sender_entry);
    }
    SECTION("hop limit 0") {
        expect(build6({.destination = "fdff:2000::10", .hop_limit = 0}), DropReason::ttl_expired);
    }
    SECTION("outside the IPv6 service and container networks") {
        expect(packet6("fc00::102", 1, "2001:db8::1", 80), DropReason::not_routable);
    }
    SECTION("this node's own IPv6 subnet") {
        expect(packet6("fc00::102", 1, "fc00::103", 80), DropReason::local_loop);
    }
    SECTION("an incoming IPv6 packet for another node's subnet") {
        auto p = packet6("fdff::200", 80, "fc00::202", 40000);
        CHECK(in(a, p) == Decision{Drop{DropReason::misdelivered}});
    }
}

TEST_CASE("an unknown IPv6 ServiceIP or nsipv6 is queried, and dropped if the query did not know") {
    Node a = node_a();
    auto p = packet6("fc00::102", 1, "fdff:2000::99", 80);
    const auto before = p;
    CHECK(out(a, p) == Decision{AwaitQuery{ip6("fdff:2000::99")}});
    CHECK(p == before);  // untouched while it waits
    CHECK(to_string(QueryKey{ip6("fdff:2000::99")}) == "fdff:2000::99");
    CHECK(out(a, p, L4Csum::full, true) == Decision{Drop{DropReason::unknown_service}});
    auto q = packet6("fc00::102", 1, "fc00::299", 80);
    CHECK(out(a, q) == Decision{AwaitQuery{ip6("fc00::299")}});
    CHECK(out(a, q, L4Csum::full, true) == Decision{Drop{DropReason::unknown_nsip}});
}

TEST_CASE("IPv6 traffic straight to another node's nsipv6 is tunnelled untranslated") {
    Node a = node_a();
    auto p = packet6("fc00::102", 1, "fc00::205", 5432);
    const auto before = p;
    CHECK(out(a, p) == Decision{to_b});
    CHECK(p == before);
    CHECK(a.counters.outgoing_direct == 1);
}

TEST_CASE("an IPv6 super-segment's partial checksum is rewritten as a partial one") {
    Node a = node_a();
    auto p = packet6("fc00::102", 40000, "fdff:2000::10", 80);
    auto v = view(p);
    fill_checksums(v, L4Csum::partial);
    CHECK(out(a, p, L4Csum::partial) == Decision{to_b});
    auto expected = p;
    auto e = view(expected);
    fill_checksums(e, L4Csum::partial);
    CHECK(p == expected);
}

TEST_CASE("a cached IPv6 flow whose instance went away chooses again") {
    Node a = node_a();
    auto p = packet6("fc00::102", 7, "fdff:2000::10", 80);
    CHECK(out(a, p) == Decision{to_b});
    a.table.remove_instance("web.ns.svc.ns", 0);
    auto q = packet6("fc00::102", 7, "fdff:2000::10", 80);
    CHECK(out(a, q) == Decision{DeliverLocal{}});
    CHECK(dst_of(q) == ip6("fc00::103"));
}

namespace {
// An ICMPv6 error of `type` from `src` to `dst` quoting `quoted` (cut to fit 1280 bytes).
std::vector<uint8_t> icmp6_error(const char* src, const char* dst, uint8_t type,
                                 const std::vector<uint8_t>& quoted, uint32_t mtu = 1280) {
    auto b = build6({.protocol = ipproto::icmpv6, .source = src, .destination = dst, .payload = 0});
    b.resize(40);
    std::vector<uint8_t> icmp(8, 0);
    icmp[0] = type;
    csum::store_be32(&icmp[4], type == 2 ? mtu : 0);
    icmp.insert(icmp.end(), quoted.begin(), quoted.begin() + std::min<size_t>(quoted.size(), 1232));
    b.insert(b.end(), icmp.begin(), icmp.end());
    csum::store_be16(&b[4], static_cast<uint16_t>(b.size() - 40));
    auto v = view(b);
    fill_checksums(v);
    return b;
}
// The quoted packet's source (at 56) or destination (at 72) of an error with no extensions.
Ipv6 quoted(const std::vector<uint8_t>& b, size_t at) {
    Ipv6 a;
    std::copy(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(at) + 16,
              a.bytes.begin());
    return a;
}
Ipv6 quoted_source(const std::vector<uint8_t>& b) {
    return quoted(b, 56);
}
Ipv6 quoted_destination(const std::vector<uint8_t>& b) {
    return quoted(b, 72);
}
}  // namespace

TEST_CASE("a packet-too-big about a translated flow reaches the sender as about what it sent") {
    // Who reports it on the server's node: the server instance, or that host itself (its bridge
    // address, as the kernel does when a link on the way is smaller).
    const char* reporter = GENERATE("fc00::202", "fc00::201");
    Node a = node_a();
    Node b = node_b();
    auto spec = spec6("fc00::102", 40000, "fdff:2000::10", 80);
    spec.payload = 1300;
    auto p = build6(spec);
    const auto sent = p;
    CHECK(out(a, p) == Decision{to_b});
    CHECK(in(b, p) == Decision{DeliverLocal{}});
    // B reports the packet as it arrived (fdff::100 -> fc00::202) to its source.
    auto ptb = icmp6_error(reporter, "fdff::100", 2, p);
    CHECK(owner_shard(view(ptb), 4) == owner_shard(view(p), 4));  // the flow's shard
    CHECK(out(b, ptb) == Decision{to_a});
    CHECK(src_of(ptb) == ip6("fdff::200"));  // as from the instance the packet was for
    CHECK(dst_of(ptb) == ip6("fc00::102"));
    CHECK(in(a, ptb) == Decision{DeliverLocal{}});
    // The client sees an error from the ServiceIP it addressed, about the packet it sent.
    CHECK(src_of(ptb) == ip6("fdff:2000::10"));
    CHECK(quoted_source(ptb) == ip6("fc00::102"));
    CHECK(quoted_destination(ptb) == ip6("fdff:2000::10"));
    CHECK(std::equal(sent.begin() + 40, sent.begin() + 44, ptb.begin() + 88));  // ports as sent
    CHECK(csum::load_be32(&ptb[44]) == 1280);                                   // the MTU
    CHECK(checksums_ok(ptb));
}

TEST_CASE("an ICMPv6 error a client sends about a reply goes to the instance of its flow") {
    Node a = node_a();
    Node b = node_b();
    auto p = packet6("fc00::102", 40000, "fdff:2000::10", 53, ipproto::udp);
    CHECK(out(a, p) == Decision{to_b});
    // The reply as the client got it (fdff:2000::10 -> fc00::102), answered with port unreachable.
    auto reply = packet6("fc00::202", 53, "fdff::100", 40000, ipproto::udp);
    CHECK(out(b, reply) == Decision{to_a});
    CHECK(in(a, reply) == Decision{DeliverLocal{}});
    auto error = icmp6_error("fc00::102", "fdff:2000::10", 1, reply);
    CHECK(out(a, error) == Decision{to_b});  // the flow's instance, not a new RR turn
    CHECK(dst_of(error) == ip6("fc00::202"));
    CHECK(src_of(error) == ip6("fdff::100"));
    // The quote now reads as the server sent the reply.
    CHECK(quoted_source(error) == ip6("fc00::202"));
    CHECK(quoted_destination(error) == ip6("fdff::100"));
    CHECK(checksums_ok(error));
}

TEST_CASE("an IPv6 tunnel packet is admitted only from an address the table places on its sender") {
    Node a = node_a();
    auto from = [&](const char* src, const char* sender) {
        auto p = packet6(src, 80, "fc00::102", 40000);
        return admit_incoming(view(p), a.path, ip(sender));
    };
    // B's instances: web 0 by its IPv6 InstanceNumber ServiceIP, db 0 by its nsipv6.
    CHECK(from("fdff::200", "10.0.0.2") == std::nullopt);
    CHECK(from("fc00::205", "10.0.0.2") == std::nullopt);
    CHECK(a.counters.dropped_total() == 0);

    // Outside fc00::/7: a global, a link-local and the unspecified address.
    CHECK(from("2001:db8::1", "10.0.0.2") == Decision{Drop{DropReason::foreign_source}});
    CHECK(from("fe80::1", "10.0.0.2") == Decision{Drop{DropReason::foreign_source}});
    CHECK(from("::", "10.0.0.2") == Decision{Drop{DropReason::foreign_source}});
    // A neighbour on this node (nsipv6 or ServiceIP), an address of this /120 no entry has, a
    // ServiceIP shared by all instances, B's instance claimed by A: none is the sender's.
    CHECK(from("fc00::103", "10.0.0.2") == Decision{Drop{DropReason::spoofed_source}});
    CHECK(from("fdff::201", "10.0.0.2") == Decision{Drop{DropReason::spoofed_source}});
    CHECK(from("fc00::177", "10.0.0.2") == Decision{Drop{DropReason::spoofed_source}});
    CHECK(from("fdff:2000::10", "10.0.0.2") == Decision{Drop{DropReason::spoofed_source}});
    CHECK(from("fdff::200", "10.0.0.1") == Decision{Drop{DropReason::spoofed_source}});
    CHECK(a.counters.dropped(DropReason::foreign_source) == 3);
    CHECK(a.counters.dropped(DropReason::spoofed_source) == 5);
}

TEST_CASE("an IPv6 tunnel packet from a source the table does not know waits for a query") {
    Node a = node_a();
    auto p = packet6("fdff::999", 80, "fc00::102", 40000);
    CHECK(admit_incoming(view(p), a.path, ip("10.0.0.2")) ==
          Decision{AwaitQuery{ip6("fdff::999")}});
    CHECK(admit_incoming(view(p), a.path, ip("10.0.0.2"), true) ==
          Decision{Drop{DropReason::unknown_source}});
    // The answer placed it on B: admitted.
    a.table.upsert(
        with_v6(entry("new", 0, "172.19.2.9", "10.0.0.2", {{IpType::InstanceNumber, "172.30.9.9"}}),
                "fc00::209", {"fdff::999"}));
    CHECK(admit_incoming(view(p), a.path, ip("10.0.0.2"), true) == std::nullopt);
    CHECK(a.counters.dropped(DropReason::unknown_source) == 1);
}

TEST_CASE(
    "an IPv6 tunnel packet for the subnet's base, the bridge, the TUN or elsewhere is dropped") {
    Node a = node_a();
    auto to = [&](const char* dst) {
        auto p = packet6("fdff::200", 80, dst, 40000);
        return in(a, p);
    };
    CHECK(to("fc00::101") == Decision{Drop{DropReason::not_namespace}});       // the bridge
    CHECK(to("fc00::100") == Decision{Drop{DropReason::not_namespace}});       // the base
    CHECK(to("fcef::dead:beef") == Decision{Drop{DropReason::misdelivered}});  // the TUN
    CHECK(to("ff02::1") == Decision{Drop{DropReason::misdelivered}});          // all nodes
    CHECK(to("fc00::202") == Decision{Drop{DropReason::misdelivered}});        // B's subnet
    CHECK(a.counters.dropped(DropReason::not_namespace) == 2);
    CHECK(a.counters.dropped(DropReason::misdelivered) == 3);
    CHECK(to("fc00::1ff") == Decision{DeliverLocal{}});  // the /120's last address is a namespace's
    CHECK(to("fc00::102") == Decision{DeliverLocal{}});
}
