// The packet core's address rewrite in partial-checksum mode, applied once to a whole
// super-segment, must leave split/merge output with valid checksums: the contract between the
// segmentation offloads and the translation.
#include <catch2/catch.hpp>

#include "core/packet.hpp"
#include "test_packets.hpp"
#include "tunnel/segmentation.hpp"

using namespace nm;
using namespace nm::test;

namespace {

const Ipv4 kServiceIp{0x0a1e0005};  // 10.30.0.5
const Ipv4 kInstance{0xac13010c};   // 172.19.1.12

}  // namespace

TEST_CASE("a super-segment translated once in partial mode splits into valid packets") {
    const bool udp = GENERATE(false, true);
    TcpSpec spec;
    spec.flow.dst = {10, 30, 0, 5};
    spec.options = timestamp_option();
    spec.payload = pattern(20000);
    auto bytes = udp ? udp_packet(spec.flow, spec.payload) : tcp_packet(spec);
    Packet in;
    in.vnet = make_partial(bytes, 1368);
    in.bytes = bytes;

    auto view = PacketView::parse(in.bytes);
    REQUIRE(view);
    view->rewrite_destination(kInstance, L4Csum::partial);
    view->rewrite_source(Ipv4{0xac130210}, L4Csum::partial);

    std::vector<uint8_t> out(kSplitBufferSize);
    auto result = split(in, out);
    REQUIRE(result);
    const auto segments = segments_of(*result);
    REQUIRE(segments.size() == (20000 + 1367) / 1368);
    for (auto s : segments) {
        REQUIRE(checksums_ok(s));
        auto v = PacketView::parse(std::span(const_cast<uint8_t*>(s.data()), s.size()));
        REQUIRE(v);
        CHECK(v->destination() == kInstance);
    }
}

TEST_CASE("a packet translated in partial mode gets a valid checksum when split completes it") {
    TcpSpec spec;
    spec.flow.dst = {10, 30, 0, 5};
    spec.payload = pattern(900);
    auto bytes = tcp_packet(spec);
    Packet in;
    in.vnet = make_partial(bytes, 0);
    in.bytes = bytes;
    auto view = PacketView::parse(in.bytes);
    REQUIRE(view);
    view->rewrite_destination(kInstance, L4Csum::partial);
    REQUIRE(split(in, {}));
    CHECK(checksums_ok(bytes));
}

TEST_CASE("a merged unit reverse-translated once in partial mode is valid when completed") {
    std::vector<std::vector<uint8_t>> storage;
    TcpSpec spec;
    spec.flow.src = {172, 19, 1, 12};
    spec.options = timestamp_option();
    for (int i = 0; i < 12; ++i) {
        spec.payload = pattern(1368, static_cast<uint32_t>(i));
        storage.push_back(tcp_packet(spec));
        spec.seq += 1368;
        ++spec.id;
    }
    std::vector<Packet> received;
    for (auto& s : storage) received.push_back(Packet{s});
    BufferPool pool(4);
    PacketBatch out(pool, 4);
    SegmentMerger merger(true);
    merger.merge(received, out);
    REQUIRE(out.size() == 1);
    REQUIRE(out[0].vnet.needs_csum());

    auto view = PacketView::parse(out[0].bytes);
    REQUIRE(view);
    view->rewrite_source(kServiceIp, L4Csum::partial);

    // Cut it again the way the kernel would (split computes every checksum from scratch, so
    // check the partial sum itself: completing it must give the full checksum).
    std::vector<uint8_t> unit(out[0].bytes.begin(), out[0].bytes.end());
    const size_t field = size_t{out[0].vnet.csum_start} + out[0].vnet.csum_offset;
    const uint16_t sum =
        static_cast<uint16_t>(~reference_sum(std::span(unit).subspan(out[0].vnet.csum_start)));
    unit[field] = static_cast<uint8_t>(sum >> 8);
    unit[field + 1] = static_cast<uint8_t>(sum);
    CHECK(checksums_ok(unit));
    CHECK(PacketView::parse(unit)->source() == kServiceIp);
}
