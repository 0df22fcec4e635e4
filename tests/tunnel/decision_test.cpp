// The data path's decisions, as specified by protocol.md "Data path", on two simulated nodes:
// A (10.0.0.1, subnet 172.19.1.0/24) and B (10.0.0.2, subnet 172.19.2.0/24).
#include "tunnel/decision.hpp"

#include <catch2/catch.hpp>
#include <set>

#include "decision_testkit.hpp"

using namespace nm;
using namespace nm::test;

namespace {

TranslationTable cluster_table() {
    TranslationTable t;
    t.upsert(entry("cli", 0, "172.19.1.2", "10.0.0.1", {{IpType::InstanceNumber, "172.30.1.0"}}));
    t.upsert(entry("web", 0, "172.19.2.2", "10.0.0.2",
                   {{IpType::RR, "172.30.0.10"},
                    {IpType::Closest, "172.30.0.11"},
                    {IpType::InstanceNumber, "172.30.2.0"}}));
    t.upsert(entry("web", 1, "172.19.1.3", "10.0.0.1",
                   {{IpType::RR, "172.30.0.10"},
                    {IpType::Closest, "172.30.0.11"},
                    {IpType::InstanceNumber, "172.30.2.1"}}));
    t.upsert(entry("db", 0, "172.19.2.5", "10.0.0.2", {{IpType::InstanceNumber, "172.30.3.0"}}));
    return t;
}

struct Node : DecisionNode {
    Node(const char* node_ip, const char* subnet)
        : DecisionNode(cluster_table(), node_ip, subnet) {}
};

std::vector<uint8_t> packet(const char* src, uint16_t sport, const char* dst, uint16_t dport,
                            uint8_t proto = ipproto::tcp) {
    return build({.protocol = proto,
                  .source = ip(src),
                  .destination = ip(dst),
                  .source_port = sport,
                  .destination_port = dport});
}
// A TCP packet with `flags` (SYN 0x02, FIN 0x01, RST 0x04, ACK 0x10).
std::vector<uint8_t> tcp_packet(const char* src, uint16_t sport, const char* dst, uint16_t dport,
                                uint8_t flags) {
    return build({.protocol = ipproto::tcp,
                  .source = ip(src),
                  .destination = ip(dst),
                  .source_port = sport,
                  .destination_port = dport,
                  .tcp_flags = flags});
}

// admit_incoming of a datagram the node at `sender` sent.
std::optional<Decision> admit(Node& n, std::vector<uint8_t>& bytes, const char* sender,
                              bool after_query = false) {
    return admit_incoming(view(bytes), n.path, ip(sender), after_query);
}
Ipv4 src_of(std::vector<uint8_t>& b) {
    return view(b).source();
}
Ipv4 dst_of(std::vector<uint8_t>& b) {
    return view(b).destination();
}

}  // namespace

TEST_CASE("a new flow to an RR ServiceIP is rewritten and sent to the chosen instance's node") {
    Node a("10.0.0.1", "172.19.1.0");
    auto p = packet("172.19.1.2", 40000, "172.30.0.10", 80);
    CHECK(out(a, p) == Decision{to_b});
    CHECK(dst_of(p) == ip("172.19.2.2"));  // the chosen instance's nsip
    CHECK(src_of(p) == ip("172.30.1.0"));  // the sender's InstanceNumber ServiceIP
    CHECK(checksums_ok(p));
    CHECK(a.counters.outgoing_new_flows == 1);
}

TEST_CASE("a flow keeps its instance while new flows to an RR ServiceIP take turns") {
    Node a("10.0.0.1", "172.19.1.0");
    std::vector<Decision> firsts;
    for (uint16_t port = 1; port <= 4; ++port) {
        auto p = packet("172.19.1.2", port, "172.30.0.10", 80);
        firsts.push_back(out(a, p));
    }
    CHECK(firsts == std::vector<Decision>{to_b, DeliverLocal{}, to_b, DeliverLocal{}});
    for (int again = 0; again < 3; ++again) {
        auto p = packet("172.19.1.2", 1, "172.30.0.10", 80);
        CHECK(out(a, p) == Decision{to_b});
        auto q = packet("172.19.1.2", 2, "172.30.0.10", 80);
        CHECK(out(a, q) == Decision{DeliverLocal{}});
        CHECK(dst_of(q) == ip("172.19.1.3"));
    }
    CHECK(a.counters.outgoing_cached == 6);
    CHECK(a.cache.counters().hits == 6);
}

TEST_CASE("a reply crosses back and the client sees it come from the ServiceIP it addressed") {
    auto proto = GENERATE(ipproto::tcp, ipproto::udp, ipproto::icmp);
    Node a("10.0.0.1", "172.19.1.0");
    Node b("10.0.0.2", "172.19.2.0");
    // Client on A to the RR ServiceIP; the first turn is web 0 on B.
    auto request =
        packet("172.19.1.2", 40000, "172.30.0.10", proto == ipproto::icmp ? 40000 : 80, proto);
    REQUIRE(out(a, request) == Decision{to_b});
    REQUIRE(admit(b, request, "10.0.0.1") == std::nullopt);  // cli's ServiceIP, on A
    REQUIRE(in(b, request) == Decision{DeliverLocal{}});
    CHECK(src_of(request) == ip("172.30.1.0"));  // no conversion on B: unchanged
    CHECK(b.counters.incoming_unchanged == 1);

    // The server answers the address it saw; that is an ordinary outgoing packet on B.
    const uint16_t sport = proto == ipproto::icmp ? 40000 : 80;
    auto reply = build({.protocol = proto,
                        .source = ip("172.19.2.2"),
                        .destination = ip("172.30.1.0"),
                        .source_port = sport,
                        .destination_port = 40000,
                        .icmp_type = 0});
    REQUIRE(out(b, reply) == Decision{to_a});
    CHECK(dst_of(reply) == ip("172.19.1.2"));
    CHECK(src_of(reply) == ip("172.30.2.0"));
    REQUIRE(admit(a, reply, "10.0.0.2") == std::nullopt);  // web 0's ServiceIP, on B
    REQUIRE(in(a, reply) == Decision{DeliverLocal{}});
    CHECK(src_of(reply) == ip("172.30.0.10"));
    CHECK(dst_of(reply) == ip("172.19.1.2"));
    CHECK(checksums_ok(reply));
    CHECK(a.counters.incoming_translated == 1);
}

TEST_CASE("Closest sends a new flow to the local instance, delivered through the incoming path") {
    Node a("10.0.0.1", "172.19.1.0");
    a.rtt.set(ip("10.0.0.2"), std::chrono::microseconds(50));
    auto request = packet("172.19.1.2", 5555, "172.30.0.11", 443);
    REQUIRE(out(a, request) == Decision{DeliverLocal{}});
    CHECK(dst_of(request) == ip("172.19.1.3"));
    REQUIRE(in(a, request) == Decision{DeliverLocal{}});
    auto reply = packet("172.19.1.3", 443, "172.30.1.0", 5555);
    REQUIRE(out(a, reply) == Decision{DeliverLocal{}});
    REQUIRE(in(a, reply) == Decision{DeliverLocal{}});
    CHECK(src_of(reply) == ip("172.30.0.11"));
    CHECK(dst_of(reply) == ip("172.19.1.2"));
    CHECK(checksums_ok(reply));
}

TEST_CASE("Closest without a local instance picks the node with the lowest round trip") {
    Node b("10.0.0.2", "172.19.2.0");
    b.table.upsert(
        entry("c2", 0, "172.19.2.9", "10.0.0.2", {{IpType::InstanceNumber, "172.30.1.9"}}));
    b.table.remove_nsip(ip("172.19.2.2"));  // B's own web instance is gone
    b.table.upsert(entry("web", 2, "172.19.3.3", "10.0.0.3", {{IpType::Closest, "172.30.0.11"}}));
    b.rtt.set(ip("10.0.0.1"), std::chrono::microseconds(900));
    b.rtt.set(ip("10.0.0.3"), std::chrono::microseconds(200));
    auto p = packet("172.19.2.9", 1000, "172.30.0.11", 80);
    CHECK(out(b, p) == Decision{SendTo{ip("10.0.0.3"), 50103}});
    CHECK(dst_of(p) == ip("172.19.3.3"));
}

TEST_CASE("an InstanceNumber ServiceIP reaches exactly that instance") {
    Node a("10.0.0.1", "172.19.1.0");
    for (uint16_t port = 1; port <= 3; ++port) {
        auto p = packet("172.19.1.2", port, "172.30.3.0", 5432);
        CHECK(out(a, p) == Decision{to_b});
        CHECK(dst_of(p) == ip("172.19.2.5"));
    }
}

TEST_CASE("an unknown ServiceIP waits for a table query, then is dropped if still unknown") {
    Node a("10.0.0.1", "172.19.1.0");
    auto p = packet("172.19.1.2", 1, "172.30.9.9", 80);
    const auto before = p;
    CHECK(out(a, p) == Decision{AwaitQuery{ip("172.30.9.9")}});
    CHECK(p == before);
    CHECK(out(a, p, true) == Decision{Drop{DropReason::unknown_service}});
    CHECK(a.counters.dropped(DropReason::unknown_service) == 1);
    // The query's answer lands in the table: the retry goes through.
    a.table.upsert(entry("new", 0, "172.19.2.7", "10.0.0.2", {{IpType::RR, "172.30.9.9"}}));
    CHECK(out(a, p, true) == Decision{to_b});
}

TEST_CASE("traffic straight to an nsip in another node's subnet is tunnelled unchanged") {
    Node a("10.0.0.1", "172.19.1.0");
    auto p = packet("172.19.1.2", 1, "172.19.2.5", 5432);
    const auto before = p;
    CHECK(out(a, p) == Decision{to_b});
    CHECK(p == before);
    CHECK(a.counters.outgoing_direct == 1);
    auto q = packet("172.19.1.2", 1, "172.19.7.7", 80);
    CHECK(out(a, q) == Decision{AwaitQuery{ip("172.19.7.7")}});
    CHECK(out(a, q, true) == Decision{Drop{DropReason::unknown_nsip}});
}

TEST_CASE("a cached flow whose instance went away chooses again, and a moved node is followed") {
    Node a("10.0.0.1", "172.19.1.0");
    auto p = packet("172.19.1.2", 7, "172.30.0.10", 80);
    REQUIRE(out(a, p) == Decision{to_b});
    // web 0 moves to another node: the flow keeps its instance at the new address.
    a.table.upsert(entry("web", 0, "172.19.2.2", "10.0.0.7",
                         {{IpType::RR, "172.30.0.10"},
                          {IpType::Closest, "172.30.0.11"},
                          {IpType::InstanceNumber, "172.30.2.0"}}));
    p = packet("172.19.1.2", 7, "172.30.0.10", 80);
    CHECK(out(a, p) == Decision{SendTo{ip("10.0.0.7"), 50103}});
    CHECK(dst_of(p) == ip("172.19.2.2"));
    // web 0 is removed: the flow goes to the remaining instance.
    a.table.remove_instance("web.ns.svc.ns", 0);
    p = packet("172.19.1.2", 7, "172.30.0.10", 80);
    CHECK(out(a, p) == Decision{DeliverLocal{}});
    CHECK(dst_of(p) == ip("172.19.1.3"));
}

TEST_CASE("a partial checksum from an offloaded TUN read is rewritten as a partial checksum") {
    Node a("10.0.0.1", "172.19.1.0");
    auto p = packet("172.19.1.2", 40000, "172.30.0.10", 80);
    auto v = view(p);
    fill_checksums(v, L4Csum::partial);
    REQUIRE(decide_outgoing(v, a.path, L4Csum::partial) == Decision{to_b});
    auto expected = p;
    auto e = view(expected);
    fill_checksums(e, L4Csum::partial);
    CHECK(p == expected);
}

TEST_CASE("non-first fragments go on to an InstanceNumber ServiceIP and are dropped for RR") {
    Node a("10.0.0.1", "172.19.1.0");
    auto later = [](const char* dst) {
        return build({.protocol = ipproto::udp,
                      .source = ip("172.19.1.2"),
                      .destination = ip(dst),
                      .fragment_field = 0x00b9});
    };
    auto to_db = later("172.30.3.0");
    CHECK(out(a, to_db) == Decision{to_b});
    CHECK(dst_of(to_db) == ip("172.19.2.5"));
    CHECK(src_of(to_db) == ip("172.30.1.0"));
    CHECK(ipv4_header_checksum_ok(view(to_db)));
    CHECK(a.counters.fragments_forwarded == 1);
    auto to_rr = later("172.30.0.10");
    CHECK(out(a, to_rr) == Decision{Drop{DropReason::fragment}});
    CHECK(a.counters.dropped(DropReason::fragment) == 1);
}

TEST_CASE("each drop reason is decided and counted") {
    Node a("10.0.0.1", "172.19.1.0");
    auto expect_out = [&](std::vector<uint8_t> p, DropReason reason) {
        CHECK(out(a, p) == Decision{Drop{reason}});
        CHECK(a.counters.dropped(reason) == 1);
    };
    auto expect_in = [&](std::vector<uint8_t> p, DropReason reason) {
        Node fresh("10.0.0.1", "172.19.1.0");
        CHECK(in(fresh, p) == Decision{Drop{reason}});
        CHECK(fresh.counters.dropped(reason) == 1);
        CHECK(fresh.counters.dropped_total() == 1);
    };
    SECTION("malformed") {
        expect_out({0x45, 0, 0}, DropReason::malformed);
        expect_in({0x45, 0, 0}, DropReason::malformed);
    }
    SECTION("ttl_expired") {
        auto p = build({.destination = ip("172.30.0.10"), .ttl = 0});
        expect_out(p, DropReason::ttl_expired);
        auto q = build({.destination = ip("172.19.1.2"), .ttl = 0});
        expect_in(q, DropReason::ttl_expired);
    }
    SECTION("fragment") {
        expect_out(build({.protocol = ipproto::udp,
                          .destination = ip("172.30.0.11"),
                          .fragment_field = 0x0010}),
                   DropReason::fragment);
    }
    SECTION("not_routable") {
        expect_out(packet("172.19.1.2", 1, "8.8.8.8", 53), DropReason::not_routable);
    }
    SECTION("local_loop: the bridge owns the local subnet") {
        expect_out(packet("172.19.1.2", 1, "172.19.1.3", 80), DropReason::local_loop);
    }
    SECTION("local_loop: an entry placing a foreign-subnet nsip on this node") {
        a.table.upsert(entry("odd", 0, "172.19.8.8", "10.0.0.1", {{IpType::RR, "172.30.8.8"}}));
        expect_out(packet("172.19.1.2", 1, "172.19.8.8", 80), DropReason::local_loop);
    }
    SECTION("unknown_service") {
        auto p = packet("172.19.1.2", 1, "172.30.200.1", 80);
        CHECK(out(a, p, true) == Decision{Drop{DropReason::unknown_service}});
    }
    SECTION("unknown_nsip") {
        auto p = packet("172.19.1.2", 1, "172.20.0.1", 80);
        CHECK(out(a, p, true) == Decision{Drop{DropReason::unknown_nsip}});
    }
    SECTION("no_sender_entry: the sender is in no entry") {
        expect_out(packet("172.19.1.99", 1, "172.30.0.10", 80), DropReason::no_sender_entry);
    }
    SECTION("no_sender_entry: the sender has no InstanceNumber ServiceIP") {
        a.table.upsert(entry("bare", 0, "172.19.1.50", "10.0.0.1", {{IpType::RR, "172.30.8.1"}}));
        expect_out(packet("172.19.1.50", 1, "172.30.3.0", 80), DropReason::no_sender_entry);
    }
    SECTION("misdelivered") {
        expect_in(packet("172.30.2.0", 80, "172.19.2.2", 1), DropReason::misdelivered);
    }
    SECTION("unknown_node: the forwarder asks is_known_node, by source address alone") {
        CHECK(is_known_node(a.table, ip("10.0.0.2")));
        CHECK_FALSE(is_known_node(a.table, ip("10.9.9.9")));
    }
    SECTION("query_failed and backlog_full are counted by the forwarder") {
        a.counters.drop(DropReason::query_failed);
        a.counters.drop(DropReason::backlog_full);
        CHECK(a.counters.dropped_total() == 2);
    }
}

TEST_CASE("a tunnel packet is admitted only from an address the table places on its sender") {
    Node a("10.0.0.1", "172.19.1.0");
    auto from_b = [&](const char* src) {
        auto p = packet(src, 80, "172.19.1.2", 40000);
        return admit(a, p, "10.0.0.2");
    };
    // B's instances: web 0 by its InstanceNumber ServiceIP (as our and a Go agent's outgoing
    // path write it) and db 0 by its nsip (traffic straight to an nsip).
    CHECK(from_b("172.30.2.0") == std::nullopt);
    CHECK(from_b("172.19.2.5") == std::nullopt);
    CHECK(a.counters.dropped_total() == 0);

    CHECK(from_b("1.2.3.4") == Decision{Drop{DropReason::foreign_source}});
    // A neighbour on this node (by nsip or ServiceIP), an address of this subnet no entry has,
    // a ServiceIP shared by all instances: none is B's to send from.
    CHECK(from_b("172.19.1.3") == Decision{Drop{DropReason::spoofed_source}});
    CHECK(from_b("172.30.2.1") == Decision{Drop{DropReason::spoofed_source}});
    CHECK(from_b("172.19.1.77") == Decision{Drop{DropReason::spoofed_source}});
    CHECK(from_b("172.30.0.10") == Decision{Drop{DropReason::spoofed_source}});
    CHECK(a.counters.dropped(DropReason::foreign_source) == 1);
    CHECK(a.counters.dropped(DropReason::spoofed_source) == 4);

    // B's real instances, claimed by another node of the table.
    auto p = packet("172.30.2.0", 80, "172.19.1.2", 40000);
    CHECK(admit(a, p, "10.0.0.1") == Decision{Drop{DropReason::spoofed_source}});
}

TEST_CASE("a tunnel packet from a source the table does not know waits for a query, then drops") {
    Node a("10.0.0.1", "172.19.1.0");
    auto p = packet("172.30.9.9", 80, "172.19.1.2", 40000);
    CHECK(admit(a, p, "10.0.0.2") == Decision{AwaitQuery{ip("172.30.9.9")}});
    CHECK(admit(a, p, "10.0.0.2", true) == Decision{Drop{DropReason::unknown_source}});
    // The answer placed it on B: admitted.
    a.table.upsert(
        entry("new", 0, "172.19.2.9", "10.0.0.2", {{IpType::InstanceNumber, "172.30.9.9"}}));
    CHECK(admit(a, p, "10.0.0.2", true) == std::nullopt);
    CHECK(a.counters.dropped(DropReason::unknown_source) == 1);
}

TEST_CASE("a tunnel packet for the bridge, the subnet's edges, the TUN or a host is dropped") {
    Node a("10.0.0.1", "172.19.1.0");
    auto to = [&](const char* dst) {
        auto p = packet("172.30.2.0", 80, dst, 40000);
        return in(a, p);
    };
    CHECK(to("172.19.1.1") == Decision{Drop{DropReason::not_namespace}});    // the bridge
    CHECK(to("172.19.1.0") == Decision{Drop{DropReason::not_namespace}});    // the base
    CHECK(to("172.19.1.255") == Decision{Drop{DropReason::not_namespace}});  // broadcast
    CHECK(to("10.19.1.254") == Decision{Drop{DropReason::misdelivered}});    // the TUN
    CHECK(to("10.0.0.1") == Decision{Drop{DropReason::misdelivered}});       // the host
    CHECK(a.counters.dropped(DropReason::not_namespace) == 3);
    CHECK(a.counters.dropped(DropReason::misdelivered) == 2);
    CHECK(to("172.19.1.2") == Decision{DeliverLocal{}});  // a namespace
}

TEST_CASE("every drop reason has its own metrics name") {
    std::set<std::string_view> names;
    for (size_t i = 0; i < drop_reason_count; ++i) {
        auto name = to_string(static_cast<DropReason>(i));
        CHECK(name != "unknown");
        names.insert(name);
    }
    CHECK(names.size() == drop_reason_count);
    PathCounters x, y;
    x.drop(DropReason::fragment);
    y.drop(DropReason::fragment);
    y.incoming_translated = 3;
    x += y;
    CHECK(x.dropped(DropReason::fragment) == 2);
    CHECK(x.incoming_translated == 3);
}

TEST_CASE("the data path marks the ServiceIPs and nsips it uses, a cached flow once a second") {
    Node a("10.0.0.1", "172.19.1.0");
    const auto start = ConversionCache::Clock::now();
    a.cache.set_now(start);
    auto first = packet("172.19.1.2", 40000, "172.30.0.10", 80);
    REQUIRE(out(a, first) == Decision{to_b});
    CHECK(a.uses.drain() == std::vector<Ipv4>{ip("172.30.0.10")});
    // More packets of the flow within the same second: nothing new to report.
    for (int i = 0; i < 10; ++i) {
        auto again = packet("172.19.1.2", 40000, "172.30.0.10", 80);
        REQUIRE(out(a, again) == Decision{to_b});
    }
    CHECK(a.uses.drain().empty());
    // A second later the flow's next packet marks its ServiceIP again.
    a.cache.set_now(start + std::chrono::milliseconds(1100));
    auto later = packet("172.19.1.2", 40000, "172.30.0.10", 80);
    REQUIRE(out(a, later) == Decision{to_b});
    CHECK(a.uses.drain() == std::vector<Ipv4>{ip("172.30.0.10")});
    // Direct traffic marks the nsip it goes to; a dropped packet marks nothing.
    auto direct = packet("172.19.1.2", 40001, "172.19.2.5", 5432);
    REQUIRE(out(a, direct) == Decision{to_b});
    auto unknown = packet("172.19.1.2", 40002, "172.30.9.9", 80);
    REQUIRE(out(a, unknown, true) == Decision{Drop{DropReason::unknown_service}});
    CHECK(a.uses.drain() == std::vector<Ipv4>{ip("172.19.2.5")});
}

TEST_CASE("a SYN sent to a node and its SYN-ACK back give one round-trip sample of that node") {
    Node a("10.0.0.1", "172.19.1.0");
    Node b("10.0.0.2", "172.19.2.0");
    RttSampleBuffer samples;
    a.path.rtt_samples = &samples;
    const auto t0 = ConversionCache::Clock::now() + std::chrono::seconds(1);
    // One handshake: SYN on A at t0 (to web 0 on B, RR's first turn), SYN-ACK back at t0 + 3 ms.
    // Another: its SYN is sent again before the answer, so the answer is ambiguous (no sample).
    auto handshake = [&](uint16_t port, bool retransmit) {
        a.cache.set_now(t0);
        auto syn = packet("172.19.1.2", port, "172.30.0.10", 80);
        REQUIRE(out(a, syn) == Decision{to_b});
        if (retransmit) {
            auto again = packet("172.19.1.2", port, "172.30.0.10", 80);
            REQUIRE(out(a, again) == Decision{to_b});
        }
        auto syn_ack = tcp_packet("172.19.2.2", 80, "172.30.1.0", port, 0x12);
        REQUIRE(out(b, syn_ack) == Decision{to_a});
        a.cache.set_now(t0 + std::chrono::microseconds(3000));
        REQUIRE(in(a, syn_ack) == Decision{DeliverLocal{}});
        REQUIRE(in(a, syn_ack) == Decision{DeliverLocal{}});  // a duplicate: no second sample
    };
    handshake(41000, false);
    CHECK(samples.drain() == std::vector<RttSample>{{ip("10.0.0.2"), 3000}});
    // A flow to a local instance (RR's next turn, web 1 on A) measures nothing.
    auto local = packet("172.19.1.2", 41001, "172.30.0.10", 80);
    REQUIRE(out(a, local) == Decision{DeliverLocal{}});
    handshake(41002, true);
    CHECK(samples.drain().empty());
}

namespace {
// Stands in for the kernel fast path: records what the outgoing path offers it.
struct RecordingOffload final : FlowOffload {
    struct Offer {
        FlowKey key;
        Conversion conversion;
        Ipv4 source;
    };
    std::vector<Offer> offers;
    bool offer(const FlowKey& key, const Conversion& conversion, Ipv4 source, uint64_t) override {
        offers.push_back({key, conversion, source});
        return true;
    }
};
// Node A with the recording fast path, its cache's clock at `start`.
struct OffloadingNode : Node {
    RecordingOffload kernel;
    const ConversionCache::Clock::time_point start = ConversionCache::Clock::now();
    OffloadingNode() : Node("10.0.0.1", "172.19.1.0") {
        path.offload = &kernel;
        cache.set_now(start);
    }
};
}  // namespace

TEST_CASE(
    "the outgoing path offers a flow's conversion to the fast path when it records it: a remote "
    "one, and a local one each direction with the source the incoming path gives its packets") {
    OffloadingNode a;
    auto& kernel = a.kernel;
    auto p = packet("172.19.1.2", 1, "172.30.0.10", 80);
    REQUIRE(out(a, p) == Decision{to_b});
    REQUIRE(kernel.offers.size() == 1);
    {
        const auto& [key, c, source] = kernel.offers[0];
        CHECK(key == FlowKey{ip("172.19.1.2"), ip("172.30.0.10"), 1, 80, ipproto::tcp});
        CHECK(c.new_destination == ip("172.19.2.2"));
        CHECK(c.new_source == ip("172.30.1.0"));
        CHECK(source == c.new_source);
        CHECK(c.reply_source == ip("172.30.2.0"));
        CHECK(c.node_ip == ip("10.0.0.2"));
        CHECK_FALSE(c.local);
    }
    auto local = packet("172.19.1.2", 2, "172.30.0.10", 80);  // RR's next turn: web 1, on A
    REQUIRE(out(a, local) == Decision{DeliverLocal{}});
    REQUIRE(kernel.offers.size() == 2);
    {
        const auto& [key, c, source] = kernel.offers[1];
        CHECK(key == FlowKey{ip("172.19.1.2"), ip("172.30.0.10"), 2, 80, ipproto::tcp});
        CHECK(c.local);
        CHECK(c.new_destination == ip("172.19.1.3"));
        CHECK(source == ip("172.30.1.0"));  // the client's InstanceNumber ServiceIP
    }
    REQUIRE(in(a, local) == Decision{DeliverLocal{}});
    // web 1 answers the address it saw: its own flow, offered with the source the incoming path
    // gives it, the RR ServiceIP the client addressed.
    auto reply = packet("172.19.1.3", 80, "172.30.1.0", 2);
    REQUIRE(out(a, reply) == Decision{DeliverLocal{}});
    REQUIRE(kernel.offers.size() == 3);
    const auto& [key, c, source] = kernel.offers[2];
    CHECK(key == FlowKey{ip("172.19.1.3"), ip("172.30.1.0"), 80, 2, ipproto::tcp});
    CHECK(c.local);
    CHECK(c.new_destination == ip("172.19.1.2"));
    CHECK(c.new_source == ip("172.30.2.1"));
    CHECK(source == ip("172.30.0.10"));
    REQUIRE(in(a, reply) == Decision{DeliverLocal{}});
    CHECK(src_of(reply) == source);  // what the userspace path made of it
    CHECK(dst_of(reply) == c.new_destination);
}

TEST_CASE(
    "a reply the kernel should have carried makes the incoming path offer its flow again, at "
    "most once a second, never for a TCP SYN, FIN or RST") {
    OffloadingNode a;
    auto& kernel = a.kernel;
    auto request = packet("172.19.1.2", 1, "172.30.0.10", 80);
    REQUIRE(out(a, request) == Decision{to_b});
    REQUIRE(kernel.offers.size() == 1);
    // The replies of the flow, from web 0's InstanceNumber ServiceIP on B.
    auto reply = [](uint8_t flags) { return tcp_packet("172.30.2.0", 80, "172.19.1.2", 1, flags); };
    auto ack = reply(0x10);
    REQUIRE(in(a, ack) == Decision{DeliverLocal{}});
    CHECK(src_of(ack) == ip("172.30.0.10"));
    CHECK(kernel.offers.size() == 1);  // within the second of the offer: not again
    a.cache.set_now(a.start + std::chrono::milliseconds(2000));
    for (uint8_t control : {0x12, 0x11, 0x04}) {  // SYN+ACK, FIN+ACK, RST
        auto p = reply(control);
        REQUIRE(in(a, p) == Decision{DeliverLocal{}});
    }
    CHECK(kernel.offers.size() == 1);
    auto data = reply(0x18);  // the kernel's reply entry is gone (evicted, expired alone)
    REQUIRE(in(a, data) == Decision{DeliverLocal{}});
    REQUIRE(kernel.offers.size() == 2);
    CHECK(kernel.offers[1].key == kernel.offers[0].key);  // the flow, by its outgoing key
    CHECK(kernel.offers[1].conversion.reply_source == ip("172.30.2.0"));
    auto again = reply(0x18);
    REQUIRE(in(a, again) == Decision{DeliverLocal{}});
    CHECK(kernel.offers.size() == 2);  // once a second at most
}

TEST_CASE(
    "an offered flow is offered again only for a packet the kernel should have carried, at most "
    "once a second, never for a TCP SYN, FIN or RST, which always take the userspace path") {
    OffloadingNode a;
    auto& kernel = a.kernel;
    const auto start = a.start;
    auto tcp = [](uint8_t flags) { return tcp_packet("172.19.1.2", 1, "172.30.0.10", 80, flags); };
    auto syn = tcp(0x02);
    REQUIRE(out(a, syn) == Decision{to_b});
    REQUIRE(kernel.offers.size() == 1);
    auto ack = tcp(0x10);
    CHECK(out(a, ack) == Decision{to_b});
    CHECK(kernel.offers.size() == 1);  // within the second: not again
    a.cache.set_now(start + std::chrono::milliseconds(5000));
    for (uint8_t control : {0x02, 0x11, 0x04, 0x14}) {  // SYN, FIN+ACK, RST, RST+ACK
        auto p = tcp(control);
        CHECK(out(a, p) == Decision{to_b});
    }
    CHECK(kernel.offers.size() == 1);  // the kernel left these to us by design: its entry stays
    auto data = tcp(0x18);             // PSH+ACK: the kernel did not carry it, so it is gone
    CHECK(out(a, data) == Decision{to_b});
    CHECK(kernel.offers.size() == 2);
    CHECK(out(a, data) == Decision{to_b});
    CHECK(kernel.offers.size() == 2);  // once a second at most

    // A UDP flow has no control packets: a datagram seen here a second later is offered again.
    auto local = packet("172.19.1.2", 6, "172.30.0.10", 80);  // RR's next turn: the local one
    REQUIRE(out(a, local) == Decision{DeliverLocal{}});
    CHECK(kernel.offers.size() == 3);
    auto udp = packet("172.19.1.2", 7, "172.30.0.10", 80, ipproto::udp);
    REQUIRE(out(a, udp) == Decision{to_b});
    CHECK(kernel.offers.size() == 4);
    a.cache.set_now(start + std::chrono::milliseconds(6100));
    auto udp_later = packet("172.19.1.2", 7, "172.30.0.10", 80, ipproto::udp);
    CHECK(out(a, udp_later) == Decision{to_b});
    CHECK(kernel.offers.size() == 5);
}
