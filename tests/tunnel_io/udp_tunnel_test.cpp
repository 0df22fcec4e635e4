// UdpTunnel: GSO sends, GRO receives, drops counted, on a test namespace's loopback.
#include "tunnel/udp_tunnel.hpp"

#include <array>
#include <catch2/catch.hpp>
#include <functional>

#include "core/config.hpp"
#include "test_async.hpp"
#include "test_netns.hpp"
#include "test_packets.hpp"
#include "tunnel/flow_owner.hpp"
#include "tunnel/uring.hpp"

using namespace nm;
using namespace nm::test;

namespace {

const Ipv4 kLoopback{0x7f000001};

// The I/O variants every socket test runs in: readiness, and the ring receiving with a multishot
// recvmsg into provided buffers or with recvmsg chains.
struct Io {
    IoMode mode;
    bool multishot;
};
std::ostream& operator<<(std::ostream& out, const Io& io) {
    return out << to_string(io.mode)
               << (io.mode == IoMode::uring ? (io.multishot ? " multishot" : " chains") : "")
               << " I/O";
}
#define NM_IO_VARIANTS \
    GENERATE(Io{IoMode::readiness, false}, Io{IoMode::uring, true}, Io{IoMode::uring, false})

// The shard's ring for IoMode::uring, none for readiness.
std::shared_ptr<Uring> ring_for(boost::asio::io_context& context, IoMode mode) {
    if (mode != IoMode::uring) return nullptr;
    auto ring = Uring::open(context);
    REQUIRE(ring);
    return *ring;
}

UdpTunnel open_socket(boost::asio::io_context& context, UdpTunnelOptions options = {},
                      const std::shared_ptr<Uring>& ring = nullptr, bool multishot = true) {
    if (options.bind.address == Ipv4{}) options.bind.address = kLoopback;
    auto socket = UdpTunnel::open(context, options);
    REQUIRE(socket);
    if (ring) socket->use_ring(ring, 64, multishot);
    return std::move(*socket);
}

// One I/O variant's stage: a test namespace this thread has entered (`prepare` runs on it
// first), the context, and the ring the sockets opened here share in uring I/O.
struct SocketBench {
    SocketBench(const std::string& name, Io io,
                const std::function<void(TestNetns&)>& prepare = nullptr)
        : io(io), ns(name), in(prepared(ns, prepare)), ring(ring_for(context, io.mode)) {}
    // A tunnel socket on loopback (unless options bind it elsewhere) in this variant's I/O.
    UdpTunnel open(const UdpTunnelOptions& options = {}) {
        return open_socket(context, options, ring, io.multishot);
    }

    static const TestNetns& prepared(TestNetns& ns,
                                     const std::function<void(TestNetns&)>& prepare) {
        if (prepare) prepare(ns);
        return ns;
    }

    Io io;
    TestNetns ns;
    EnterNetns in;
    boost::asio::io_context context;
    std::shared_ptr<Uring> ring;
};

// `count` datagrams of `size` bytes (the last `last` bytes), distinct contents, end to end.
std::vector<uint8_t> datagrams(size_t count, size_t size, size_t last) {
    std::vector<uint8_t> all;
    for (size_t i = 0; i < count; ++i) {
        auto d = pattern(i + 1 == count ? last : size, static_cast<uint32_t>(i + 7));
        all.insert(all.end(), d.begin(), d.end());
    }
    return all;
}

// Receives until `count` datagrams arrived; returns them one per entry, and how many receives
// came coalesced by GRO.
awaitable<std::pair<std::vector<std::vector<uint8_t>>, size_t>> receive_datagrams(
    UdpTunnel& socket, PacketBatch& batch, size_t count, UdpEndpoint expected_source) {
    std::vector<std::vector<uint8_t>> got;
    size_t coalesced = 0;
    while (got.size() < count) {
        auto n = co_await socket.receive_batch(batch);
        REQUIRE(n);
        for (const Packet& p : batch) {
            CHECK(p.peer == expected_source);
            if (p.segment_size) ++coalesced;
            for_each_datagram(p,
                              [&](std::span<uint8_t> d) { got.emplace_back(d.begin(), d.end()); });
        }
    }
    co_return std::pair{got, coalesced};
}

}  // namespace

TEST_CASE("UDP GSO send and GRO receive give back the original datagrams") {
    const size_t count = GENERATE(2, 20, 64, 100, 200);
    const Io io = NM_IO_VARIANTS;
    INFO(io);
    SocketBench bench("tiogso", io);
    auto sender = bench.open();
    auto receiver = bench.open();
    REQUIRE(sender.gso());
    REQUIRE(receiver.gro());
    auto bytes = datagrams(count, 1400, 321);
    Packet packet;
    packet.bytes = bytes;
    packet.peer = receiver.local();
    packet.segment_size = 1400;

    auto sent = run_until_done(bench.context, sender.send_batch(std::span(&packet, 1)));
    REQUIRE(sent);
    CHECK(*sent == count);
    // Several UDP_SEGMENT messages when over 64 segments or 64 KiB, still one sendmmsg (one
    // io_uring_enter on the ring).
    CHECK(sender.counters().send_calls == 1);
    CHECK(sender.counters().send_errors == 0);

    BufferPool pool(16);
    PacketBatch batch(pool, 16);
    auto [got, coalesced] =
        run_until_done(bench.context, receive_datagrams(receiver, batch, count, sender.local()));
    REQUIRE(got.size() == count);
    for (size_t i = 0; i < count; ++i) {
        INFO("datagram " << i);
        CHECK(got[i] == pattern(i + 1 == count ? 321 : 1400, static_cast<uint32_t>(i + 7)));
    }
    CHECK(coalesced > 0);
    CHECK(receiver.counters().received_datagrams == count);
    CHECK(receiver.receives_multishot() == (io.mode == IoMode::uring && io.multishot));
    if (bench.ring) {
        CHECK(bench.ring->counters().completions > 0);
        CHECK(bench.ring->counters().stray == 0);
    }
}

TEST_CASE("without GSO every segment goes as its own datagram") {
    const Io io = NM_IO_VARIANTS;
    INFO(io);
    SocketBench bench("tionogso", io);
    auto sender = bench.open({.gso = false});
    auto receiver = bench.open({.gro = false});
    auto bytes = datagrams(10, 1000, 1000);
    Packet packet{bytes, {}, receiver.local(), 1000};
    auto sent = run_until_done(bench.context, sender.send_batch(std::span(&packet, 1)));
    REQUIRE(sent);
    CHECK(*sent == 10);
    BufferPool pool(16);
    PacketBatch batch(pool, 16);
    auto [got, coalesced] =
        run_until_done(bench.context, receive_datagrams(receiver, batch, 10, sender.local()));
    CHECK(got.size() == 10);
    CHECK(coalesced == 0);
}

TEST_CASE("tunnel sockets of every shard share one port") {
    TestNetns ns("tioport");
    EnterNetns in(ns);
    boost::asio::io_context context;
    auto first = open_socket(context);
    auto second = UdpTunnel::open(context, {.bind = first.local()});
    REQUIRE(second);
    CHECK(second->local() == first.local());
    // Large buffers: we are root, so *BUFFORCE goes past rmem_max (the kernel reports double).
    CHECK(first.receive_buffer() >= 32 << 20);
    CHECK(first.send_buffer() >= 32 << 20);
}

TEST_CASE("a datagram the kernel refuses is counted and the batch goes on") {
    const Io io = NM_IO_VARIANTS;
    INFO(io);
    SocketBench bench("tiounr", io);
    auto sender = bench.open();
    auto receiver = bench.open();
    auto bytes = pattern(100);
    std::vector<Packet> packets = {
        {bytes, {}, {Ipv4{0x0a636363}, 9}, 0},  // 10.99.99.99: no route in this namespace
        {bytes, {}, receiver.local(), 0}};
    auto sent = run_until_done(bench.context, sender.send_batch(packets));
    REQUIRE(sent);
    CHECK(*sent == 1);
    CHECK(sender.counters().send_errors == 1);
    CHECK(sender.counters().last_send_errno == ENETUNREACH);
}

TEST_CASE("receive drops for a full socket buffer are counted by the socket and the kernel") {
    const Io io = NM_IO_VARIANTS;
    INFO(io);
    SocketBench bench("tiodrop", io);
    auto sender = bench.open();
    auto receiver = bench.open({.receive_buffer = 4096, .gro = false});
    auto before = read_udp_kernel_counters();
    REQUIRE(before);
    auto bytes = pattern(1000);
    std::vector<Packet> packets(200, Packet{bytes, {}, receiver.local(), 0});
    REQUIRE(run_until_done(bench.context, sender.send_batch(packets)));
    // The kernel stamps a datagram with the drops before it was queued: drain what got in, then
    // one more datagram carries the count.
    BufferPool pool(4);
    PacketBatch batch(pool, 4);
    size_t drained = 0;
    while (drained < 200) {
        auto n = run_until_done(bench.context, receiver.receive_batch(batch));
        REQUIRE(n);
        drained += *n;
        if (receiver.counters().socket_drops > 0) break;
        Packet marker{bytes, {}, receiver.local(), 0};
        REQUIRE(run_until_done(bench.context, sender.send_batch(std::span(&marker, 1))));
    }
    CHECK(receiver.counters().socket_drops > 0);
    auto after = read_udp_kernel_counters();
    REQUIRE(after);
    CHECK(after->rcvbuf_errors > before->rcvbuf_errors);
    CHECK(after->rcvbuf_errors - before->rcvbuf_errors == receiver.counters().socket_drops);
    CHECK(after->in_datagrams >= before->in_datagrams + 1);
}

TEST_CASE("the kernel gives each datagram to the socket of its inner flow's owner shard") {
    // Three shards' sockets joined in shard order, the BPF program on one of them, then
    // datagrams of 300 TCP and UDP flows, IPv4 and IPv6, from one peer: the kernel's own 4-tuple
    // hash would put them all on one socket; steered, each lands where owner_shard says.
    constexpr unsigned shards = 3;
    const Io io = NM_IO_VARIANTS;
    INFO(io);
    SocketBench bench("tiosteer", io);
    std::vector<UdpTunnel> sockets;
    sockets.push_back(bench.open());
    for (unsigned i = 1; i < shards; ++i)
        sockets.push_back(bench.open({.bind = sockets[0].local()}));
    REQUIRE(sockets[1].steer_to_owners(shards));
    auto sender = open_socket(bench.context);  // readiness I/O in every variant

    std::vector<std::vector<uint8_t>> inner;
    for (uint16_t i = 0; i < 300; ++i) {
        test::Flow flow{.src = {172, 30, 1, 1},
                        .dst = {10, 19, static_cast<uint8_t>(1 + i % 5), 2},
                        .sport = 80,
                        .dport = static_cast<uint16_t>(40000 + i * 7)};
        if (i % 4 >= 2) {  // fdff::1 -> fc00::2xx
            flow.v6 = true;
            flow.src = {0xfd, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
            flow.dst = {0xfc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, static_cast<uint8_t>(i)};
        }
        TcpSpec tcp;
        tcp.flow = flow;
        tcp.payload = pattern(64, i);
        inner.push_back(i % 2 ? udp_packet(flow, pattern(64, i)) : tcp_packet(tcp));
    }
    std::array<size_t, shards> expected{};
    std::vector<Packet> out;
    for (auto& p : inner) {
        auto view = PacketView::parse(p);
        REQUIRE(view);
        ++expected[owner_shard(*view, shards)];
        out.push_back({p, {}, sockets[0].local(), 0});
    }
    for (size_t n : expected) CHECK(n > 50);
    REQUIRE(run_until_done(bench.context, sender.send_batch(out)));

    BufferPool pool(64);
    PacketBatch batch(pool, 64);
    for (unsigned s = 0; s < shards; ++s) {
        INFO("socket of shard " << s);
        auto [got, coalesced] = run_until_done(
            bench.context, receive_datagrams(sockets[s], batch, expected[s], sender.local()),
            std::chrono::seconds(3));
        for (auto& d : got) {
            auto view = PacketView::parse(d);
            REQUIRE(view);
            CHECK(owner_shard(*view, shards) == s);
        }
    }
}

TEST_CASE(
    "the path MTU toward a peer is the route's, and a GSO send past it is counted as too big") {
    const Io io = NM_IO_VARIANTS;
    INFO(io);
    SocketBench bench("tiopmtu", io, [](TestNetns& n) {
        n.ip("link add ul0 mtu 1400 type veth peer name ul1 mtu 1400");
        n.ip("addr add 10.77.0.1/24 dev ul0");
        n.ip("link set ul1 up");
        n.ip("link set ul0 up");
        n.ip("route add 10.77.1.9/32 dev ul0 mtu 1300");
    });
    auto sender = bench.open({.bind = {Ipv4{0x0a4d0001}, 0}});
    const Ipv4 peer{0x0a4d0002}, narrow{0x0a4d0109};  // 10.77.0.2, 10.77.1.9
    CHECK(sender.path_mtu(peer) == 1400);             // the interface's
    CHECK(sender.path_mtu(narrow) == 1300);           // the route's
    CHECK(sender.path_mtu(Ipv4{0x0a636363}) == 0);    // no route: unknown

    // Segments of 1450 bytes: each datagram 1478 on the wire, over 1400.
    auto segments = datagrams(4, 1450, 1450);
    auto single = pattern(1450);
    std::vector<Packet> packets = {{segments, {}, {peer, 9}, 1450},
                                   {single, {}, {peer, 9}, 0}};  // one datagram: fragmented
    auto sent = run_until_done(bench.context, sender.send_batch(packets));
    REQUIRE(sent);
    CHECK(*sent == 1);
    CHECK(sender.counters().send_too_big == 1);
    CHECK(sender.counters().last_send_errno == EMSGSIZE);
}
