// TunDevice: queues, offload negotiation and its fallback, options.
#include "tunnel/tun_device.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>

#include "core/config.hpp"
#include "test_async.hpp"
#include "test_netns.hpp"
#include "tunnel/flow_owner.hpp"
#include "tunnel/uring.hpp"

using namespace nm;
using namespace nm::test;
namespace off = nm::tun_offload;

TEST_CASE("offload negotiation keeps every flag group the kernel accepts") {
    std::vector<unsigned> calls;
    unsigned refused = 0;
    auto kernel = [&](unsigned flags) {
        calls.push_back(flags);
        if (flags & ~off::all & ~off::tso_ecn) return false;             // unknown bits
        if ((flags & ~off::csum) && !(flags & off::csum)) return false;  // all need CSUM
        if (((flags & off::uso4) != 0) != ((flags & off::uso6) != 0)) return false;
        return (flags & refused) == 0;
    };
    SECTION("everything accepted: one call") {
        CHECK(negotiate_offloads(off::all, kernel) == off::all);
        CHECK(calls.size() == 1);
    }
    SECTION("an old kernel without USO keeps checksum and TSO") {
        refused = off::uso4 | off::uso6;
        CHECK(negotiate_offloads(off::all, kernel) == (off::csum | off::tso4 | off::tso6));
        CHECK(calls.back() == (off::csum | off::tso4 | off::tso6));
    }
    SECTION("a refused TSO6 does not cost USO") {
        refused = off::tso6;
        CHECK(negotiate_offloads(off::all, kernel) ==
              (off::csum | off::tso4 | off::uso4 | off::uso6));
    }
    SECTION("no checksum offload means nothing else either") {
        refused = off::csum;
        CHECK(negotiate_offloads(off::all, kernel) == 0);
        CHECK(calls.back() == 0);
        CHECK(calls.size() == 3);  // everything, CSUM alone, then nothing
    }
    SECTION("only what was asked for") {
        CHECK(negotiate_offloads(off::csum | off::tso4, kernel) == (off::csum | off::tso4));
    }
}

TEST_CASE("a TUN falls back when the kernel refuses one of the offloads asked for") {
    TestNetns ns("tiofb");
    EnterNetns in(ns);
    // This kernel takes USO4 only together with USO6: asking for it alone is refused.
    auto tun = TunDevice::open({.name = "tio0",
                                .queues = 1,
                                .offload = true,
                                .wanted = off::csum | off::tso4 | off::uso4});
    REQUIRE(tun);
    CHECK(tun->offloads().vnet_hdr);
    CHECK(tun->offloads().flags == (off::csum | off::tso4));
    CHECK(tun->offloads().to_string() == "vnet_hdr csum tso4");
}

TEST_CASE("a TUN opens one queue per shard with the offloads this kernel accepts") {
    TestNetns ns("tioq");
    EnterNetns in(ns);
    auto tun = TunDevice::open({.name = "tio0", .queues = 2});
    REQUIRE(tun);
    WARN("TUN offloads on this kernel: " << tun->offloads().to_string());
    CHECK(tun->queue_count() == 2);
    const unsigned basic = off::csum | off::tso4 | off::tso6;
    CHECK((tun->offloads().flags & basic) == basic);
    CHECK((tun->offloads().flags & ~off::all) == 0);
    CHECK(tun->txqueuelen() == 10000);
    CHECK(run("ip -n " + ns.name() + " link show tio0 | grep -q 'qlen 10000'") == 0);

    boost::asio::io_context context;
    auto q0 = tun->attach_queue(0, context);
    auto q1 = tun->attach_queue(1, context);
    REQUIRE(q0);
    REQUIRE(q1);
    CHECK(q0->vnet_hdr());
    auto again = tun->attach_queue(0, context);
    REQUIRE_FALSE(again);
    CHECK(again.error().code == Errc::invalid_argument);
}

TEST_CASE("a TUN opened without offloads carries plain packets") {
    TestNetns ns("tiono");
    EnterNetns in(ns);
    auto tun = TunDevice::open({.name = "tio0", .queues = 1, .offload = false});
    REQUIRE(tun);
    CHECK_FALSE(tun->offloads().vnet_hdr);
    CHECK(tun->offloads().flags == 0);
    CHECK(tun->offloads().to_string() == "off");
}

TEST_CASE("a bad TUN name is refused before the kernel is asked") {
    auto tun = TunDevice::open({.name = "a-name-of-16-chr"});
    REQUIRE_FALSE(tun);
    CHECK(tun.error().code == Errc::invalid_argument);
    CHECK(tun.error().message.find("15") != std::string::npos);
}

namespace {

// UDP packets read from one queue until `count` arrived; others (ICMPv6 chatter) skipped.
awaitable<std::vector<std::vector<uint8_t>>> read_udp(TunQueue& queue, PacketBatch& batch,
                                                      size_t count) {
    std::vector<std::vector<uint8_t>> got;
    while (got.size() < count) {
        auto n = co_await queue.read_batch(batch);
        REQUIRE(n);
        for (const Packet& p : batch) {
            auto view = PacketView::parse(p.bytes);
            if (view && view->protocol() == ipproto::udp)
                got.emplace_back(p.bytes.begin(), p.bytes.end());
        }
    }
    co_return got;
}

}  // namespace

TEST_CASE("the kernel hands each packet to the TUN queue of its flow's owner shard") {
    // One-way UDP flows from 150 source ports: with nothing written back, the TUN's own flow
    // learning has nothing to go by; the steering program puts each on its owner's queue. Over
    // IPv4 and over IPv6 (the program reads the IPv6 next header and ports as well).
    constexpr unsigned shards = 3;
    const IoMode mode = GENERATE(IoMode::readiness, IoMode::uring);
    const bool v6 = GENERATE(false, true);
    INFO(to_string(mode) << " I/O, " << (v6 ? "IPv6" : "IPv4"));
    TestNetns ns("tiotsteer");
    EnterNetns in(ns);
    auto tun = TunDevice::open({.name = "tio0", .queues = shards, .offload = false});
    REQUIRE(tun);
    auto steered = tun->steer_to_owners();
    REQUIRE(steered);
    REQUIRE(run("ip -n " + ns.name() + " addr add 10.9.0.1/24 dev tio0 && ip -n " + ns.name() +
                " addr add fd09::1/64 dev tio0 nodad && ip -n " + ns.name() +
                " link set tio0 up") == 0);
    boost::asio::io_context context;
    std::shared_ptr<Uring> ring;
    if (mode == IoMode::uring) ring = *Uring::open(context);
    std::vector<TunQueue> queues;
    for (unsigned q = 0; q < shards; ++q) {
        auto queue = tun->attach_queue(q, context);
        REQUIRE(queue);
        if (ring) queue->use_ring(ring, 64);
        queues.push_back(std::move(*queue));
    }
    std::array<size_t, shards> expected{};
    for (uint16_t i = 0; i < 150; ++i) {
        const uint16_t port = static_cast<uint16_t>(41000 + i * 3);
        const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
        REQUIRE(fd >= 0);
        if (v6) {
            sockaddr_in6 from{};
            from.sin6_family = AF_INET6;
            from.sin6_port = htons(port);
            sockaddr_in6 to{};
            to.sin6_family = AF_INET6;
            REQUIRE(::inet_pton(AF_INET6, "fd09::2", &to.sin6_addr) == 1);  // behind the TUN
            to.sin6_port = htons(9);
            REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) == 0);
            REQUIRE(::sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) == 1);
        } else {
            sockaddr_in from{};
            from.sin_family = AF_INET;
            from.sin_port = htons(port);
            sockaddr_in to{};
            to.sin_family = AF_INET;
            to.sin_addr.s_addr = htonl(0x0a090002);  // 10.9.0.2, behind the TUN
            to.sin_port = htons(9);
            REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) == 0);
            REQUIRE(::sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) == 1);
        }
        ::close(fd);
        ++expected[owner_shard(ipproto::udp, port, 9, shards)];
    }
    for (size_t n : expected) CHECK(n > 20);
    BufferPool pool(64);
    PacketBatch batch(pool, 64);
    for (unsigned q = 0; q < shards; ++q) {
        INFO("queue " << q);
        auto got = run_until_done(context, read_udp(queues[q], batch, expected[q]),
                                  std::chrono::seconds(3));
        for (auto& p : got) {
            auto view = PacketView::parse(p);
            REQUIRE(view);
            CHECK(owner_shard(*view, shards) == q);
        }
    }
}
