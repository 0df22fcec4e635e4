// Two-shard Forwarders on in-memory TUN and tunnel doubles: the side paths of the data path, for
// IPv4 and IPv6 packets alike.
#include "tunnel/forwarder.hpp"

#include <catch2/catch.hpp>

#include "decision_testkit.hpp"
#include "memory_io.hpp"
#include "table/table_writer.hpp"
#include "tunnel/flow_owner.hpp"

using namespace nm;
using namespace nm::test;

namespace {

// This node, and the other node a server instance lives on (ip() needs a running test, so no
// globals).
UdpEndpoint this_node() {
    return {ip("192.168.50.1"), 50103};
}
UdpEndpoint server_node() {
    return {ip("192.168.50.2"), 50103};
}
// A client namespace on this node, and a server instance on the other node behind an RR
// ServiceIP; both dual-stack.
TableEntry client() {
    return with_v6(
        entry("client", 0, "10.18.0.66", "192.168.50.1", {{IpType::InstanceNumber, "10.30.0.10"}}),
        "fc00::1:42", {"fdff::10"});
}
TableEntry server() {
    return with_v6(entry("server", 0, "10.18.0.130", "192.168.50.2",
                         {{IpType::RR, "10.30.0.20"}, {IpType::InstanceNumber, "10.30.0.21"}}),
                   "fc00::2:42", {"fdff:2000::20", "fdff::21"});
}
// Another instance on the server's node: with it in the table, the node is known.
TableEntry neighbour() {
    return entry("neighbour", 0, "10.18.0.131", "192.168.50.2",
                 {{IpType::InstanceNumber, "10.30.0.31"}});
}

// A client port whose TCP flow to port 80 the given shard (of two) owns.
uint16_t port_owned_by(unsigned shard) {
    uint16_t port = 40000;
    while (owner_shard(ipproto::tcp, port, 80, 2) != shard) ++port;
    return port;
}

enum class Family { ipv4, ipv6 };

// The client's packet to the server's RR ServiceIP, as the client sends it.
Bytes client_packet(Family family, uint16_t client_port, size_t payload = 100) {
    if (family == Family::ipv6)
        return build6({.source = "fc00::1:42",
                       .destination = "fdff:2000::20",
                       .source_port = client_port,
                       .payload = payload});
    return build({.source = client().nsip,
                  .destination = ip("10.30.0.20"),
                  .source_port = client_port,
                  .payload = payload});
}
// An IPv4 packet with DF set, as TCP sends it.
Bytes with_df(Bytes packet) {
    packet[6] |= 0x40;
    PacketView v = view(packet);
    fill_checksums(v);
    return packet;
}
size_t header_bytes(Family family) {
    return (family == Family::ipv6 ? 40 : 20) + 20;  // IP and TCP
}

// A packet from the server's node to the client: from `source` (the server's InstanceNumber
// ServiceIP for a reply, or its nsip) to the client's nsip.
Bytes server_packet(Family family, uint16_t client_port, bool reply, size_t payload = 16) {
    if (family == Family::ipv6)
        return build6({.source = reply ? "fdff::21" : "fc00::2:42",
                       .destination = "fc00::1:42",
                       .source_port = 80,
                       .destination_port = client_port,
                       .tcp_flags = 0x12,
                       .payload = payload});
    return build({.source = reply ? ip("10.30.0.21") : server().nsip,
                  .destination = client().nsip,
                  .source_port = 80,
                  .destination_port = client_port,
                  .tcp_flags = 0x12,
                  .payload = payload});
}

// Answers table queries from `answer` (written into the table first), once the test lets it.
class HeldResolver final : public Resolver {
  public:
    HeldResolver(TableWriter& writer, asio::io_context& shard0)
        : writer_(writer), let_(shard0.get_executor()) {}
    std::vector<TableEntry> answer;
    std::atomic<int> asked{0};

    awaitable<Result<std::vector<TableEntry>>> resolve(Ipv4) override { return answered(); }
    awaitable<Result<std::vector<TableEntry>>> resolve(const Ipv6&) override { return answered(); }
    // On shard 0.
    void let_answer() {
        answering_ = true;
        let_.notify();
    }

  private:
    awaitable<Result<std::vector<TableEntry>>> answered() {
        ++asked;
        while (!answering_) {
            const bool woken = co_await let_.wait();
            if (!woken) co_return fail(Errc::unavailable, "stopped");
        }
        for (const TableEntry& e : answer)
            if (auto r = writer_.upsert(e); !r) co_return tl::unexpected(r.error());
        co_return answer;
    }

    TableWriter& writer_;
    Wakeup let_;
    bool answering_ = false;
};

// Two shards of one node, each with its Forwarder on a MemoryTun and a MemoryWire.
struct TwoShards {
    explicit TwoShards(std::vector<TableEntry> table, ForwarderOptions options = {},
                       Budget* query_budget = nullptr) {
        for (auto& e : table) REQUIRE(writer.upsert(e));
        const NodeIdentity identity{this_node().address, this_node().port,
                                    *Cidr::parse("10.18.0.64/26"), Networks{},
                                    Cidr6{ip6("fc00::1:0"), 120}};
        std::vector<Forwarder*> peers;
        for (unsigned i = 0; i < 2; ++i) {
            auto t = std::make_unique<MemoryTun>(shards.context(i));
            auto w = std::make_unique<MemoryWire>(shards.context(i), i, network);
            tun.push_back(t.get());
            wire.push_back(w.get());
            forwarders.push_back(std::make_unique<Forwarder>(i, std::move(t), std::move(w),
                                                             replicas.replica(i), identity, turns,
                                                             resolver, options));
            peers.push_back(forwarders.back().get());
        }
        for (Forwarder* f : peers) {
            f->set_peers(peers);
            f->limit_queries(query_budget);
            f->start(shards);
            shards.at_stop(f->shard(), [f] { f->stop(); });
        }
        shards.start();
    }
    ~TwoShards() {
        shards.stop();
        shards.join();
    }
    ForwarderCounters counters(unsigned i) {
        return on(shards, i, [&] { return forwarders[i]->counters(); });
    }
    PathCounters path(unsigned i) {
        return on(shards, i, [&] { return forwarders[i]->path_counters(); });
    }
    std::vector<Bytes> written(unsigned i) {
        return on(shards, i, [&] { return tun[i]->written(); });
    }
    // The path MTU every shard's wire reports toward every peer.
    void set_path_mtu(unsigned mtu) {
        for (unsigned i = 0; i < 2; ++i) on(shards, i, [&] { wire[i]->set_path_mtu(mtu); });
    }

    Shards shards{{.count = 2, .pin = false}};
    TableReplicas replicas{2};
    TableWriter writer{shards, replicas, Networks{}};
    SharedTurns turns;
    MemoryNetwork network;
    HeldResolver resolver{writer, shards.context(0)};
    std::vector<MemoryTun*> tun;
    std::vector<MemoryWire*> wire;
    std::vector<std::unique_ptr<Forwarder>> forwarders;
};

// A datagram's inner packet, checked to be the client's packet as the server must see it.
void require_translated_for_server(Family family, Bytes bytes, uint16_t client_port) {
    PacketView v = view(bytes);
    if (family == Family::ipv6) {
        CHECK(v.source_v6() == ip6("fdff::10"));  // the client's InstanceNumber ServiceIP
        CHECK(v.destination_v6() == ip6("fc00::2:42"));
    } else {
        CHECK(v.source() == ip("10.30.0.10"));
        CHECK(v.destination() == server().nsip);
    }
    CHECK(v.source_port() == client_port);
    CHECK(checksums_ok(bytes));
}

Family either_family() {
    return GENERATE(Family::ipv4, Family::ipv6);
}

}  // namespace

TEST_CASE("a table miss parks the packets and the answer releases them in place and in order") {
    const Family family = either_family();
    INFO((family == Family::ipv6 ? "IPv6" : "IPv4"));
    ForwarderOptions options;
    options.park.packets = 3;
    TwoShards node({client()}, options);
    node.resolver.answer = {server()};
    const uint16_t port = port_owned_by(0);
    on(node.shards, 0, [&] {
        for (size_t i = 0; i < 4; ++i) node.tun[0]->inject(client_packet(family, port, 100 + i));
    });

    REQUIRE(eventually([&] { return node.resolver.asked == 1; }));
    REQUIRE(eventually([&] { return node.path(0).dropped(DropReason::backlog_full) == 1; }));
    CHECK(node.counters(0).queries == 1);  // one query for the key, however many packets wait
    CHECK(node.network.sent().empty());

    on(node.shards, 0, [&] { node.resolver.let_answer(); });
    REQUIRE(eventually([&] { return node.network.sent().size() == 3; }));
    const auto sent = node.network.sent();
    for (size_t i = 0; i < sent.size(); ++i) {
        INFO("datagram " << i);
        CHECK(sent[i].to == server_node());
        CHECK(sent[i].shard == 0);
        CHECK(sent[i].bytes.size() == header_bytes(family) + 100 + i);  // the order they were read
        require_translated_for_server(family, sent[i].bytes, port);
    }
    const auto c = node.counters(0);
    CHECK(c.released == 3);
    CHECK(c.handoffs_received == 0);  // not through the hand-off inbox
    CHECK(node.counters(1).handoffs_received == 0);
    CHECK(node.path(0).outgoing_new_flows == 1);
    CHECK(node.resolver.asked == 1);
}

TEST_CASE("a key parked while the shards' budget of queries is spent is refused before a query") {
    Budget budget(1);  // shared by both shards' forwarders, as the data plane shares its own
    TwoShards node({client()}, {}, &budget);
    node.resolver.answer = {server()};
    on(node.shards, 0, [&] { node.tun[0]->inject(client_packet(Family::ipv4, port_owned_by(0))); });
    REQUIRE(eventually([&] { return node.resolver.asked == 1; }));
    CHECK(budget.used() == 1);

    // The same miss on the other shard: nothing is spawned or sent to shard 0, the packet is
    // dropped at once and counted.
    on(node.shards, 1, [&] { node.tun[1]->inject(client_packet(Family::ipv4, port_owned_by(1))); });
    REQUIRE(eventually([&] { return node.counters(1).queries_over_budget == 1; }));
    CHECK(node.path(1).dropped(DropReason::query_failed) == 1);
    CHECK(node.counters(1).queries == 0);
    CHECK(node.resolver.asked == 1);

    // The answer gives the token back: the next miss (another key) gets its query.
    on(node.shards, 0, [&] { node.resolver.let_answer(); });
    REQUIRE(eventually([&] { return node.network.sent().size() == 1; }));
    REQUIRE(eventually([&] { return budget.used() == 0; }));
    on(node.shards, 1, [&] {
        node.tun[1]->inject(build({.source = client().nsip,
                                   .destination = ip("10.30.0.99"),
                                   .source_port = port_owned_by(1)}));
    });
    REQUIRE(eventually([&] { return node.resolver.asked == 2; }));
    CHECK(node.counters(1).queries == 1);
    CHECK(node.counters(1).queries_over_budget == 1);
}

TEST_CASE("a parked packet waits within a byte bound as well as a packet bound") {
    ForwarderOptions options;
    options.park.bytes = 2500;  // two 1100-byte packets fit, the third does not
    TwoShards node({client()}, options);
    const uint16_t port = port_owned_by(0);
    on(node.shards, 0, [&] {
        for (size_t i = 0; i < 3; ++i)
            node.tun[0]->inject(client_packet(Family::ipv6, port, 1100 - 60));
    });
    REQUIRE(eventually([&] { return node.path(0).dropped(DropReason::backlog_full) == 1; }));
    node.resolver.answer = {server()};
    on(node.shards, 0, [&] { node.resolver.let_answer(); });
    REQUIRE(eventually([&] { return node.network.sent().size() == 2; }));
    CHECK(node.counters(0).released == 2);
}

TEST_CASE(
    "a datagram whose inner source the table lacks waits for its query and then reaches "
    "the namespace on the shard that owns its flow") {
    const Family family = either_family();
    INFO((family == Family::ipv6 ? "IPv6" : "IPv4"));
    // Received on shard 0, owned by shard 1: released where it waited, then handed over.
    const uint16_t port = port_owned_by(1);
    std::vector<TableEntry> table = {client()};
    SECTION("from a node the table does not know yet") {}
    SECTION("from a known node") {
        table.push_back(neighbour());
    }
    TwoShards node(table);
    node.resolver.answer = {server()};
    on(node.shards, 0,
       [&] { node.wire[0]->inject(server_node(), server_packet(family, port, false)); });
    REQUIRE(eventually([&] { return node.resolver.asked == 1; }));
    CHECK(node.written(0).empty());
    CHECK(node.written(1).empty());

    on(node.shards, 0, [&] { node.resolver.let_answer(); });
    REQUIRE(eventually([&] { return node.written(1).size() == 1; }));
    Bytes delivered = node.written(1)[0];
    PacketView v = view(delivered);
    if (family == Family::ipv6)
        CHECK(v.source_v6() == ip6("fc00::2:42"));
    else
        CHECK(v.source() == server().nsip);
    CHECK(v.destination_port() == port);
    CHECK(node.counters(0).released == 1);
    CHECK(node.counters(0).handed_off_wire == 1);
    CHECK(node.counters(1).handoffs_received == 1);
    CHECK(node.written(0).empty());
    CHECK(node.path(0).dropped_total() == 0);
}

TEST_CASE("a packet read on a shard that does not own its flow is handed to the owner") {
    const Family family = either_family();
    INFO((family == Family::ipv6 ? "IPv6" : "IPv4"));
    TwoShards node({client(), server()});
    const uint16_t port = port_owned_by(1);

    SECTION("from the TUN: the owner sends it") {
        on(node.shards, 0, [&] { node.tun[0]->inject(client_packet(family, port)); });
        REQUIRE(eventually([&] { return node.network.sent().size() == 1; }));
        const auto sent = node.network.sent();
        CHECK(sent[0].shard == 1);
        require_translated_for_server(family, sent[0].bytes, port);
        CHECK(node.counters(0).handed_off_tun == 1);
        CHECK(node.counters(1).handoffs_received == 1);
    }
    SECTION("from the wire: the owner translates the reply and writes it to its TUN") {
        // The outgoing packet makes the conversion on the owner shard...
        on(node.shards, 1, [&] { node.tun[1]->inject(client_packet(family, port)); });
        REQUIRE(eventually([&] { return node.network.sent().size() == 1; }));
        // ...and its reply, received on the other shard's socket, finds it there. As the
        // server's node sends it: from the instance's InstanceNumber ServiceIP to the client.
        on(node.shards, 0,
           [&] { node.wire[0]->inject(server_node(), server_packet(family, port, true)); });
        REQUIRE(eventually([&] { return node.written(1).size() == 1; }));
        Bytes delivered = node.written(1)[0];
        PacketView v = view(delivered);
        if (family == Family::ipv6) {
            CHECK(v.source_v6() == ip6("fdff:2000::20"));  // the ServiceIP the client addressed
            CHECK(v.destination_v6() == ip6("fc00::1:42"));
        } else {
            CHECK(v.source() == ip("10.30.0.20"));
            CHECK(v.destination() == client().nsip);
        }
        CHECK(node.counters(0).handed_off_wire == 1);
        CHECK(node.counters(1).handoffs_received == 1);
        CHECK(node.written(0).empty());
    }
}

TEST_CASE("a send that waits for room does not hold up receives and still sends its own bytes") {
    TwoShards node({client(), server()});
    const uint16_t port = port_owned_by(0);
    on(node.shards, 0, [&] { node.wire[0]->hold_sends(true); });
    const Bytes original = client_packet(Family::ipv4, port, 300);
    on(node.shards, 0, [&] { node.tun[0]->inject(original); });
    REQUIRE(eventually(
        [&] { return on(node.shards, 0, [&] { return node.wire[0]->send_waiting(); }); }));

    // While the send waits, the receive side keeps going: datagrams reach the TUN.
    for (int i = 0; i < 40; ++i) {
        Bytes in = server_packet(Family::ipv4, port_owned_by(0), false, 1000);
        on(node.shards, 0, [&] { node.wire[0]->inject(server_node(), in); });
    }
    REQUIRE(eventually([&] { return node.written(0).size() == 40; }));
    CHECK(node.network.sent().empty());

    on(node.shards, 0, [&] { node.wire[0]->hold_sends(false); });
    REQUIRE(eventually([&] { return node.network.sent().size() == 1; }));
    // The bytes sent are the packet read, rewritten: the receives did not write over them.
    Bytes expected = original;
    view(expected).rewrite_addresses(ip("10.30.0.10"), server().nsip);
    CHECK(node.network.sent()[0].bytes == expected);
}

TEST_CASE("a packet larger than the underlay path to its peer is answered with a packet too big") {
    const Family family = either_family();
    INFO((family == Family::ipv6 ? "IPv6" : "IPv4"));
    TwoShards node({client(), server(), neighbour()});
    node.set_path_mtu(1400);
    const unsigned limit = 1400 - PathMtus::kOverhead;
    const uint16_t port = port_owned_by(0);
    // The first packet to the peer learns its path; it fits. Then one that does not, and one
    // that fits exactly.
    Bytes big = client_packet(family, port, 1450 - header_bytes(family));
    if (family == Family::ipv4) big = with_df(big);
    on(node.shards, 0, [&] {
        node.tun[0]->inject(client_packet(family, port, 100));
        node.tun[0]->inject(big);
        node.tun[0]->inject(client_packet(family, port, limit - header_bytes(family)));
    });
    REQUIRE(eventually([&] { return node.network.sent().size() == 2; }));
    REQUIRE(eventually([&] { return node.written(0).size() == 1; }));
    const auto sent = node.network.sent();
    CHECK(sent[0].bytes.size() == header_bytes(family) + 100);
    CHECK(sent[1].bytes.size() == limit);
    Bytes error = node.written(0)[0];
    PacketView v = view(error);
    CHECK(checksums_ok(error));
    if (family == Family::ipv6) {
        CHECK(v.protocol() == ipproto::icmpv6);
        CHECK(error[40] == 2);
        CHECK(csum::load_be32(&error[44]) == limit);
        CHECK(v.source_v6() == ip6("fdff:2000::20"));  // the ServiceIP the client sent to
        CHECK(v.destination_v6() == ip6("fc00::1:42"));
        // The quote as the client sent it, untranslated.
        CHECK(std::equal(error.begin() + 48, error.end(), big.begin()));
    } else {
        CHECK(v.protocol() == ipproto::icmp);
        CHECK((error[20] == 3 && error[21] == 4));
        CHECK(csum::load_be16(&error[26]) == limit);
        CHECK(v.source() == ip("10.30.0.20"));
        CHECK(v.destination() == client().nsip);
        CHECK(std::equal(error.begin() + 28, error.end(), big.begin()));
    }
    CHECK(node.path(0).dropped(DropReason::too_big) == 1);
    CHECK(node.counters(0).too_big_answered == 1);
    CHECK(node.counters(0).outer_fragmented == 0);
}

TEST_CASE("an IPv4 packet without DF larger than the path goes on, for the kernel to fragment") {
    TwoShards node({client(), server(), neighbour()});
    node.set_path_mtu(1400);
    const uint16_t port = port_owned_by(0);
    on(node.shards, 0, [&] {
        node.tun[0]->inject(client_packet(Family::ipv4, port, 100));
        node.tun[0]->inject(client_packet(Family::ipv4, port, 1450 - header_bytes(Family::ipv4)));
    });
    REQUIRE(eventually([&] { return node.network.sent().size() == 2; }));
    CHECK(node.network.sent()[1].bytes.size() == 1450);
    CHECK(node.counters(0).outer_fragmented == 1);
    CHECK(node.counters(0).too_big_answered == 0);
    CHECK(node.written(0).empty());
}

TEST_CASE("only a packet larger than the narrowest path looks its peer's path up") {
    TwoShards node({client(), server(), neighbour()});
    node.set_path_mtu(1400);
    const unsigned limit = 1400 - PathMtus::kOverhead;
    const uint16_t port = port_owned_by(0);
    auto lookups = [&] {
        return on(node.shards, 0, [&] { return node.forwarders[0]->path_mtus().lookups(); });
    };
    on(node.shards, 0, [&] {
        for (int i = 0; i < 5; ++i)
            node.tun[0]->inject(
                client_packet(Family::ipv4, port, limit - header_bytes(Family::ipv4)));
    });
    REQUIRE(eventually([&] { return node.network.sent().size() == 5; }));
    CHECK(lookups() == 0);
    on(node.shards, 0, [&] {
        node.tun[0]->inject(
            client_packet(Family::ipv4, port, limit + 1 - header_bytes(Family::ipv4)));
    });
    REQUIRE(eventually([&] { return node.network.sent().size() == 6; }));
    CHECK(lookups() == 1);
    CHECK(node.counters(0).outer_fragmented == 1);  // no DF: sent on for the kernel to fragment
}

TEST_CASE(
    "a packet released after its query is answered with a packet too big when it does not "
    "fit the path to the node the answer named") {
    TwoShards node({client()});
    node.set_path_mtu(1400);
    node.resolver.answer = {server()};
    Bytes big = client_packet(Family::ipv6, port_owned_by(0), 1450 - header_bytes(Family::ipv6));
    on(node.shards, 0, [&] { node.tun[0]->inject(big); });
    REQUIRE(eventually([&] { return node.resolver.asked == 1; }));
    on(node.shards, 0, [&] { node.resolver.let_answer(); });
    REQUIRE(eventually([&] { return node.written(0).size() == 1; }));
    Bytes error = node.written(0)[0];
    CHECK(view(error).protocol() == ipproto::icmpv6);
    CHECK(csum::load_be32(&error[44]) == 1400 - PathMtus::kOverhead);
    CHECK(node.network.sent().empty());
    CHECK(node.counters(0).too_big_answered == 1);
    CHECK(node.counters(0).outer_fragmented == 0);
}

TEST_CASE("the packets too big of one TUN read are answered in one write to the TUN") {
    TwoShards node({client(), server(), neighbour()});
    node.set_path_mtu(1400);
    const uint16_t port = port_owned_by(0);
    const Bytes big = with_df(client_packet(Family::ipv4, port, 1450 - header_bytes(Family::ipv4)));
    on(node.shards, 0, [&] {
        for (int i = 0; i < 3; ++i) node.tun[0]->inject(big);
        node.tun[0]->inject(client_packet(Family::ipv4, port, 100));
    });
    REQUIRE(eventually([&] { return node.network.sent().size() == 1; }));
    REQUIRE(eventually([&] { return node.written(0).size() == 3; }));
    CHECK(node.counters(0).too_big_answered == 3);
    CHECK(on(node.shards, 0, [&] { return node.tun[0]->write_calls(); }) == 1);
    for (const Bytes& error : node.written(0)) CHECK((error[20] == 3 && error[21] == 4));
}
