// split(): super-segments from a TUN become complete ordinary packets.
#include <catch2/catch.hpp>

#include "test_packets.hpp"
#include "tunnel/segmentation.hpp"

using namespace nm;
using namespace nm::test;

namespace {

struct Super {
    std::vector<uint8_t> bytes;
    Packet packet;
};

Super super_segment(TcpSpec spec, uint16_t gso_size) {
    Super s;
    s.bytes = tcp_packet(spec);
    s.packet.vnet = make_partial(s.bytes, gso_size);
    s.packet.bytes = s.bytes;
    return s;
}

}  // namespace

TEST_CASE("a TCP super-segment splits into complete packets of at most gso_size payload") {
    const bool v6 = GENERATE(false, true);
    const uint16_t gso = GENERATE(536, 1368, 1448);
    const size_t payload = GENERATE(1, 535, 536, 537, 1368, 1449, 10000, 65535 - 40 - 40 - 12);
    TcpSpec spec;
    spec.flow.v6 = v6;
    if (v6) spec.flow.src = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (v6) spec.flow.dst = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    spec.seq = 0xfffff000;  // wraps inside the super-segment
    spec.id = 0xfffe;       // and so does the IPv4 id
    spec.options = timestamp_option();
    spec.payload = pattern(payload);
    spec.flags = ACK | PSH;
    auto in = super_segment(spec, gso);

    std::vector<uint8_t> out(kSplitBufferSize);
    auto result = split(in.packet, out);
    REQUIRE(result);
    REQUIRE(result->bytes.size() == split_size(in.packet));
    const auto segments = segments_of(*result);
    const size_t expected = std::max<size_t>(1, (payload + gso - 1) / gso);
    REQUIRE(segments.size() == expected);
    if (expected > 1) REQUIRE(result->segment_size == (v6 ? 40 : 20) + 32 + gso);
    CHECK(result->vnet == VirtioNetHdr{});

    std::vector<uint8_t> joined;
    for (size_t i = 0; i < segments.size(); ++i) {
        const auto seg = segments[i];
        INFO("segment " << i);
        REQUIRE(checksums_ok(seg));
        const Parsed p = parse(seg);
        CHECK(p.seq == static_cast<uint32_t>(spec.seq + i * gso));
        if (!v6) CHECK(p.id == static_cast<uint16_t>(spec.id + i));
        CHECK(p.payload.size() == (i + 1 < segments.size() ? gso : payload - i * gso));
        CHECK(p.flags == (i + 1 < segments.size() ? ACK : ACK | PSH));
        joined.insert(joined.end(), p.payload.begin(), p.payload.end());
    }
    CHECK(joined == spec.payload);
}

TEST_CASE("FIN and PSH stay on the last inner packet only, CWR on the first only") {
    TcpSpec spec;
    spec.flags = ACK | PSH | FIN | CWR | ECE;
    spec.payload = pattern(5000);
    auto in = super_segment(spec, 1000);
    std::vector<uint8_t> out(kSplitBufferSize);
    auto result = split(in.packet, out);
    REQUIRE(result);
    const auto segments = segments_of(*result);
    REQUIRE(segments.size() == 5);
    CHECK(parse(segments[0]).flags == (ACK | CWR | ECE));
    for (size_t i = 1; i < 4; ++i) CHECK(parse(segments[i]).flags == (ACK | ECE));
    CHECK(parse(segments[4]).flags == (ACK | PSH | FIN | ECE));
}

TEST_CASE("a UDP super-segment splits into datagrams with their own length and checksum") {
    const bool v6 = GENERATE(false, true);
    Flow flow;
    flow.v6 = v6;
    const auto payload = pattern(7000, 9);
    auto bytes = udp_packet(flow, payload, 42);
    Packet in;
    in.vnet = make_partial(bytes, 1400);
    in.bytes = bytes;
    std::vector<uint8_t> out(kSplitBufferSize);
    auto result = split(in, out);
    REQUIRE(result);
    const auto segments = segments_of(*result);
    REQUIRE(segments.size() == 5);
    std::vector<uint8_t> joined;
    for (size_t i = 0; i < segments.size(); ++i) {
        REQUIRE(checksums_ok(segments[i]));
        const Parsed p = parse(segments[i]);
        if (!v6) CHECK(p.id == 42 + i);
        joined.insert(joined.end(), p.payload.begin(), p.payload.end());
    }
    CHECK(joined == payload);
}

TEST_CASE("a packet with a partial checksum and no GSO is completed in place") {
    const bool udp = GENERATE(false, true);
    const bool v6 = GENERATE(false, true);
    TcpSpec spec;
    spec.flow.v6 = v6;
    spec.payload = pattern(777);
    auto bytes = udp ? udp_packet(spec.flow, spec.payload) : tcp_packet(spec);
    const auto original = bytes;
    Packet in;
    in.vnet = make_partial(bytes, 0);
    in.bytes = bytes;
    REQUIRE_FALSE(checksums_ok(bytes));
    auto result = split(in, {});
    REQUIRE(result);
    CHECK(result->bytes.data() == bytes.data());
    CHECK(result->segment_size == 0);
    CHECK(bytes == original);
}

TEST_CASE("a packet without offload state passes through split unchanged") {
    TcpSpec spec;
    spec.payload = pattern(100);
    auto bytes = tcp_packet(spec);
    const auto original = bytes;
    Packet in;
    in.bytes = bytes;
    auto result = split(in, {});
    REQUIRE(result);
    CHECK(result->bytes.data() == bytes.data());
    CHECK(bytes == original);
}

TEST_CASE("segments never exceed max_packet") {
    TcpSpec spec;
    spec.payload = pattern(9000);
    auto in = super_segment(spec, 1448);
    std::vector<uint8_t> out(kSplitBufferSize);
    auto result = split(in.packet, out, 1000);
    REQUIRE(result);
    CHECK(result->segment_size == 1000);
    std::vector<uint8_t> joined;
    for (auto seg : segments_of(*result)) {
        REQUIRE(checksums_ok(seg));
        CHECK(seg.size() <= 1000);
        const Parsed p = parse(seg);
        joined.insert(joined.end(), p.payload.begin(), p.payload.end());
    }
    CHECK(joined == spec.payload);
}

TEST_CASE("malformed super-segments are refused and change nothing") {
    TcpSpec spec;
    spec.payload = pattern(3000);
    auto in = super_segment(spec, 1000);
    std::vector<uint8_t> out(kSplitBufferSize, 0xaa);
    const std::vector<uint8_t> out_before = out;

    SECTION("gso_size 0") {
        in.packet.vnet.gso_size = 0;
    }
    SECTION("GSO type for the other IP version") {
        in.packet.vnet.gso_type = VirtioNetHdr::kGsoTcpV6;
    }
    SECTION("UFO, which we never negotiate") {
        in.packet.vnet.gso_type = VirtioNetHdr::kGsoUdp;
    }
    SECTION("IP length beyond the bytes read") {
        in.packet.bytes = in.packet.bytes.first(1000);
    }
    SECTION("TCP data offset beyond the packet") {
        in.bytes[20 + 12] = 0xf0;
        in.bytes[2] = 0;
        in.bytes[3] = 60;
    }
    SECTION("not IP") {
        in.bytes[0] = 0x25;
    }
    const auto input_before = in.bytes;
    auto result = split(in.packet, out);
    REQUIRE_FALSE(result);
    CHECK(result.error().code == Errc::invalid_argument);
    CHECK(out == out_before);
    CHECK(in.bytes == input_before);
}

TEST_CASE("split reports a too small output buffer instead of writing past it") {
    TcpSpec spec;
    spec.payload = pattern(3000);
    auto in = super_segment(spec, 1000);
    std::vector<uint8_t> out(split_size(in.packet) - 1);
    auto result = split(in.packet, out);
    REQUIRE_FALSE(result);
    CHECK(result.error().code == Errc::exhausted);
}
