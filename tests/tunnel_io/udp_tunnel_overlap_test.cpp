// UdpTunnel calls that overlap (issue 15): a send that waits for room in the socket buffer
// while the receive side runs on the same socket, and two sends at once. Two namespaces joined
// by a veth whose sending side is slowed by a tbf qdisc; the tunnel socket has a small send
// buffer, so its sends wait for room while datagrams from the peer keep arriving.
#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <stdexcept>

#include "test_async.hpp"
#include "test_netns.hpp"
#include "test_packets.hpp"
#include "tunnel/udp_tunnel.hpp"

using namespace nm;
using namespace nm::test;
using namespace std::chrono_literals;

namespace {

const Ipv4 kTunnelAddress{0x0a0f0001};  // 10.15.0.1, in namespace a
const Ipv4 kPeerAddress{0x0a0f0002};    // 10.15.0.2, in namespace b

// Namespace a holds the tunnel socket; b the peer that receives its sends and keeps sending to
// it. a's side of the veth sends at 4 Mbit/s with a queue long enough never to drop.
struct SlowLink {
    struct Veth {
        Veth(const TestNetns& a, const TestNetns& b) {
            a.ip("link add name v15a type veth peer name v15b netns " + b.name());
            a.ip("addr add 10.15.0.1/24 dev v15a");
            a.ip("link set v15a up");
            b.ip("addr add 10.15.0.2/24 dev v15b");
            b.ip("link set v15b up");
            const std::string tbf =
                "tc -n " + a.name() + " qdisc add dev v15a root tbf rate 4mbit burst 4kb limit 4mb";
            if (run(tbf) != 0) throw std::runtime_error(tbf + " failed");
        }
    };

    TestNetns a{"t15a"}, b{"t15b"};
    Veth veth{a, b};
    boost::asio::io_context context;
    UdpTunnel tunnel = open_in(a, {.bind = {}, .send_buffer = 4096});
    UdpTunnel peer = open_in(b, {.bind = {kPeerAddress, 0}, .gro = false});
    UdpTunnel arrivals = open_in(b, {.bind = {kPeerAddress, 0}});

    UdpTunnel open_in(const TestNetns& ns, UdpTunnelOptions options) {
        EnterNetns in(ns);
        auto socket = UdpTunnel::open(context, options);
        if (!socket) throw std::runtime_error(socket.error().message);
        return std::move(*socket);
    }
};

std::vector<Packet> packets_to(UdpEndpoint to, std::vector<uint8_t>& bytes, size_t count) {
    return std::vector<Packet>(count, Packet{bytes, {}, to, 0});
}

// Receives on `socket` until it is closed; counts datagrams.
awaitable<size_t> receive_until_closed(UdpTunnel& socket) {
    BufferPool pool(32);
    PacketBatch batch(pool, 32);  // 32 buffers of 68 KiB: the headers the old code shared
    size_t datagrams = 0;
    for (;;) {
        auto n = co_await socket.receive_batch(batch);
        if (!n) co_return datagrams;
        datagrams += *n;
    }
}

// The peer keeps sending a datagram to the tunnel every 2 ms while `*running`.
awaitable<void> keep_arriving(UdpTunnel& from, UdpEndpoint to, const bool* running) {
    auto bytes = pattern(200, 3);
    Packet packet{bytes, {}, to, 0};
    boost::asio::steady_timer tick(co_await boost::asio::this_coro::executor);
    while (*running) {
        auto sent = co_await from.send_batch(std::span(&packet, 1));
        if (!sent) co_return;
        tick.expires_after(2ms);
        co_await tick.async_wait(boost::asio::use_awaitable);
    }
}

// Receives `count` datagrams on the peer (or fails the test after the deadline).
size_t drain(SlowLink& link, size_t count) {
    BufferPool pool(64);
    PacketBatch batch(pool, 64);
    size_t got = 0;
    while (got < count) {
        auto n = run_until_done(link.context, link.peer.receive_batch(batch), 5s);
        REQUIRE(n);
        got += *n;
    }
    return got;
}

}  // namespace

TEST_CASE("a send that waits for buffer room loses nothing while datagrams arrive on its socket") {
    SlowLink link;
    UdpEndpoint tunnel{kTunnelAddress, link.tunnel.local().port};
    auto receiving = boost::asio::co_spawn(link.context, receive_until_closed(link.tunnel),
                                           boost::asio::use_future);
    bool running = true;
    boost::asio::co_spawn(link.context, keep_arriving(link.arrivals, tunnel, &running),
                          boost::asio::detached);

    auto bytes = pattern(1400, 9);
    auto packets = packets_to(link.peer.local(), bytes, 64);
    auto sent = run_until_done(link.context, link.tunnel.send_batch(packets));
    running = false;
    REQUIRE(sent);
    CHECK(link.tunnel.counters().send_waits > 0);  // the send did wait for room
    CHECK(link.tunnel.counters().send_errors == 0);
    CHECK(link.tunnel.counters().last_send_errno == 0);
    CHECK(*sent == 64);
    CHECK(drain(link, 64) == 64);

    link.tunnel.close();
    link.context.restart();
    while (receiving.wait_for(0s) != std::future_status::ready) link.context.run_one_for(100ms);
    CHECK(receiving.get() > 0);  // the receive side ran while the send waited
}

TEST_CASE("two sends at once on one tunnel go out one after the other, none lost") {
    SlowLink link;
    auto first = pattern(1400, 1), second = pattern(1400, 2);
    auto a = packets_to(link.peer.local(), first, 40),
         b = packets_to(link.peer.local(), second, 40);
    auto one =
        boost::asio::co_spawn(link.context, link.tunnel.send_batch(a), boost::asio::use_future);
    auto two = run_until_done(link.context, link.tunnel.send_batch(b));
    while (one.wait_for(0s) != std::future_status::ready) link.context.run_one_for(100ms);
    auto first_sent = one.get();
    REQUIRE(first_sent);
    REQUIRE(two);
    CHECK(*first_sent == 40);
    CHECK(*two == 40);
    CHECK(link.tunnel.counters().send_waits > 0);
    CHECK(link.tunnel.counters().send_errors == 0);

    // One after the other: all of the first batch reaches the peer before any of the second.
    BufferPool pool(64);
    PacketBatch batch(pool, 64);
    std::vector<uint8_t> order;
    while (order.size() < 80) {
        auto n = run_until_done(link.context, link.peer.receive_batch(batch), 5s);
        REQUIRE(n);
        for (const Packet& p : batch) {
            REQUIRE(p.bytes.size() == 1400);
            order.push_back(std::equal(p.bytes.begin(), p.bytes.end(), first.begin()) ? 1 : 2);
        }
    }
    CHECK(std::count(order.begin(), order.begin() + 40, 1) == 40);
    CHECK(std::count(order.begin() + 40, order.end(), 2) == 40);
}
