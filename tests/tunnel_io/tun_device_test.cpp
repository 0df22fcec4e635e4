// TunDevice: queues, offload negotiation and its fallback, options.
#include "tunnel/tun_device.hpp"

#include <catch2/catch.hpp>

#include "test_netns.hpp"

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
