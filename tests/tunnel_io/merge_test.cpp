// SegmentMerger: received segments of one TCP flow become one super-segment for the TUN.
#include <catch2/catch.hpp>
#include <map>

#include "test_packets.hpp"
#include "tunnel/segmentation.hpp"

using namespace nm;
using namespace nm::test;

namespace {

// Received datagrams, each one packet, kept alive for the merge output to point into.
struct Received {
    std::vector<std::vector<uint8_t>> storage;
    std::vector<Packet> packets;
    void add(std::vector<uint8_t> bytes) { storage.push_back(std::move(bytes)); }
    std::span<const Packet> view() {
        packets.clear();
        for (auto& s : storage) packets.push_back(Packet{s, {}, {}, 0});
        return packets;
    }
};

// One merge of `received` into a fresh batch; keeps the pool and the merger alive for the
// checks on the output and on the counters.
struct Merge {
    BufferPool pool;
    PacketBatch out;
    SegmentMerger merger;
    explicit Merge(std::span<const Packet> received, size_t buffers = 8, size_t batch = 4,
                   bool enabled = true)
        : pool(buffers), out(pool, batch), merger(enabled) {
        merger.merge(received, out);
    }
};

// `count` segments of `size` payload bytes of one flow, starting at seq/id.
std::vector<std::vector<uint8_t>> segments(TcpSpec spec, size_t count, size_t size,
                                           size_t last_size = 0) {
    std::vector<std::vector<uint8_t>> v;
    for (size_t i = 0; i < count; ++i) {
        spec.payload =
            pattern(i + 1 == count && last_size ? last_size : size, spec.seq ^ spec.flow.sport);
        v.push_back(tcp_packet(spec));
        spec.seq += static_cast<uint32_t>(spec.payload.size());
        ++spec.id;
    }
    return v;
}

// The unit as the kernel would see it once it completes the partial checksum.
std::vector<uint8_t> completed(const Packet& unit) {
    std::vector<uint8_t> bytes(unit.bytes.begin(), unit.bytes.end());
    if (!unit.vnet.needs_csum()) return bytes;
    const size_t field = size_t{unit.vnet.csum_start} + unit.vnet.csum_offset;
    const uint16_t sum =
        static_cast<uint16_t>(~reference_sum(std::span(bytes).subspan(unit.vnet.csum_start)));
    bytes[field] = static_cast<uint8_t>(sum >> 8);
    bytes[field + 1] = static_cast<uint8_t>(sum);
    return bytes;
}

std::vector<uint8_t> payload_of(std::span<const std::vector<uint8_t>> packets) {
    std::vector<uint8_t> all;
    for (auto& p : packets) {
        auto pl = parse(p).payload;
        all.insert(all.end(), pl.begin(), pl.end());
    }
    return all;
}

}  // namespace

TEST_CASE("consecutive segments of one flow merge into one super-segment with a partial checksum") {
    const bool v6 = GENERATE(false, true);
    const size_t last = GENERATE(0, 1, 700);
    TcpSpec spec;
    spec.flow.v6 = v6;
    spec.options = timestamp_option();
    auto segs = segments(spec, 10, 1368, last);
    Received rx;
    for (auto& s : segs) rx.add(s);
    Merge m(rx.view());

    REQUIRE(m.out.size() == 1);
    const Packet& unit = m.out[0];
    CHECK(unit.vnet.flags == VirtioNetHdr::kNeedsCsum);
    CHECK(unit.vnet.gso_type == (v6 ? VirtioNetHdr::kGsoTcpV6 : VirtioNetHdr::kGsoTcpV4));
    CHECK(unit.vnet.gso_size == 1368);
    CHECK(unit.vnet.csum_start == (v6 ? 40 : 20));
    CHECK(unit.vnet.csum_offset == 16);
    CHECK(unit.vnet.hdr_len == (v6 ? 40 : 20) + 32);
    const auto full = completed(unit);
    REQUIRE(checksums_ok(full));
    const Parsed p = parse(full);
    CHECK(p.seq == spec.seq);
    CHECK(p.id == (v6 ? 0 : spec.id));
    std::vector<uint8_t> payload(p.payload.begin(), p.payload.end());
    CHECK(payload == payload_of(segs));
    CHECK(m.merger.counters().units == 1);
    CHECK(m.merger.counters().unit_segments == 10);
}

TEST_CASE("merge then split gives back the segments byte for byte") {
    TcpSpec spec;
    spec.options = timestamp_option();
    spec.flags = ACK;
    auto segs = segments(spec, 20, 1368, 100);
    // The last segment carries PSH, as split leaves it.
    {
        spec.seq += 19 * 1368;
        spec.id = static_cast<uint16_t>(spec.id + 19);
        spec.flags = ACK | PSH;
        spec.payload = pattern(100, spec.seq ^ spec.flow.sport);
        segs.back() = tcp_packet(spec);
    }
    Received rx;
    for (auto& s : segs) rx.add(s);
    Merge m(rx.view());
    REQUIRE(m.out.size() == 1);
    CHECK(parse(m.out[0].bytes).flags == (ACK | PSH));

    std::vector<uint8_t> buffer(kSplitBufferSize);
    auto again = split(m.out[0], buffer);
    REQUIRE(again);
    REQUIRE(again->segment_size == segs[0].size());
    std::vector<uint8_t> joined;
    for (auto& s : segs) joined.insert(joined.end(), s.begin(), s.end());
    CHECK(std::vector<uint8_t>(again->bytes.begin(), again->bytes.end()) == joined);
}

TEST_CASE("split then merge gives back the super-segment byte for byte") {
    TcpSpec spec;
    spec.options = timestamp_option();
    spec.flags = ACK | PSH;
    spec.payload = pattern(60000);
    auto original = tcp_packet(spec);
    Packet in;
    in.vnet = make_partial(original, 1448);
    in.bytes = original;
    const auto before = original;
    std::vector<uint8_t> buffer(kSplitBufferSize);
    auto segs = split(in, buffer);
    REQUIRE(segs);
    Packet received = *segs;  // as one GRO receive
    Merge m(std::span(&received, 1));
    REQUIRE(m.out.size() == 1);
    CHECK(std::vector<uint8_t>(m.out[0].bytes.begin(), m.out[0].bytes.end()) == before);
    CHECK(m.out[0].vnet.gso_type == in.vnet.gso_type);
    CHECK(m.out[0].vnet.gso_size == in.vnet.gso_size);
    CHECK(m.out[0].vnet.csum_start == in.vnet.csum_start);
    CHECK(m.out[0].vnet.csum_offset == in.vnet.csum_offset);
}

TEST_CASE("segments of two interleaved flows are never merged across flows") {
    TcpSpec a, b;
    b.flow.sport = 40001;  // same addresses, other port
    b.seq = a.seq + 1368;  // even a sequence number that would fit a's unit
    b.id = static_cast<uint16_t>(a.id + 1);
    auto sa = segments(a, 6, 1368);
    auto sb = segments(b, 6, 1368);
    Received rx;
    for (size_t i = 0; i < 6; ++i) {
        rx.add(sa[i]);
        rx.add(sb[i]);
    }
    Merge m(rx.view());
    REQUIRE(m.out.size() == 2);
    std::map<uint16_t, std::vector<uint8_t>> by_port;
    for (auto& unit : m.out) {
        const auto full = completed(unit);
        REQUIRE(checksums_ok(full));
        const uint16_t sport = static_cast<uint16_t>(full[20] << 8 | full[21]);
        auto pl = parse(full).payload;
        by_port[sport].insert(by_port[sport].end(), pl.begin(), pl.end());
    }
    CHECK(by_port[40000] == payload_of(sa));
    CHECK(by_port[40001] == payload_of(sb));
}

TEST_CASE("a unit ends where the kernel's TCP GRO would end it") {
    TcpSpec spec;
    auto segs = segments(spec, 6, 1000);
    std::vector<size_t> expected_units;  // segments per output packet
    uint64_t MergeCounters::*reject = nullptr;
    // Segments 3-5 built again, from a spec that `change` altered, with payload `size` each.
    auto second_half = [&](auto change, size_t size = 1000) {
        TcpSpec s = spec;
        s.seq += 3000;
        s.id = static_cast<uint16_t>(s.id + 3);
        change(s);
        auto rest = segments(s, 3, size);
        std::copy(rest.begin(), rest.end(), segs.begin() + 3);
    };
    SECTION("a sequence gap") {
        segs.erase(segs.begin() + 3);
        expected_units = {3, 2};
        reject = &MergeCounters::reject_sequence;
    }
    SECTION("a different TOS (ECN CE mark)") {
        second_half([](TcpSpec& s) { s.tos = 3; });
        expected_units = {3, 3};
        reject = &MergeCounters::reject_header;
    }
    SECTION("a different window") {
        second_half([](TcpSpec& s) { s.window = 9; });
        expected_units = {3, 3};
        reject = &MergeCounters::reject_header;
    }
    SECTION("an IPv4 id out of order") {
        second_half([](TcpSpec& s) { s.id = static_cast<uint16_t>(s.id + 4); });
        expected_units = {3, 3};
        reject = &MergeCounters::reject_ip_id;
    }
    SECTION("a larger segment after the first size") {
        second_half([](TcpSpec&) {}, 1200);
        expected_units = {3, 3};
        reject = &MergeCounters::reject_size;
    }
    SECTION("PSH in the middle") {
        segs[2][20 + 13] |= PSH;  // the checksum is now wrong: the merger does not look at it
        expected_units = {3, 3};
    }
    SECTION("a shorter segment in the middle") {
        spec.seq += 2000;
        spec.id = static_cast<uint16_t>(spec.id + 2);
        auto rest = segments(spec, 4, 1000, 0);
        spec.payload = pattern(10);
        rest[0] = tcp_packet(spec);
        // rest[1..] no longer follow: rebuild them after the short one
        spec.seq += 10;
        ++spec.id;
        auto tail = segments(spec, 3, 1000);
        segs.resize(2);
        segs.push_back(rest[0]);
        segs.insert(segs.end(), tail.begin(), tail.end());
        expected_units = {3, 3};
    }
    SECTION("an URG segment passes alone") {
        segs[3][20 + 13] |= URG;
        expected_units = {3, 1, 2};
        reject = &MergeCounters::reject_flags;
    }
    Received rx;
    for (auto& s : segs) rx.add(s);
    Merge m(rx.view());
    REQUIRE(m.out.size() == expected_units.size());
    for (size_t i = 0; i < m.out.size(); ++i) {
        INFO("unit " << i);
        const size_t payload = m.out[i].bytes.size() - 40;
        const size_t gso = m.out[i].vnet.gso_size;
        CHECK((gso ? (payload + gso - 1) / gso : 1) == expected_units[i]);
        CHECK((m.out[i].vnet.gso_type != 0) == (expected_units[i] > 1));
    }
    if (reject) CHECK(m.merger.counters().*reject == 1);
}

TEST_CASE("packets that are not TCP data pass through untouched") {
    TcpSpec spec;
    auto data = segments(spec, 2, 1000);
    TcpSpec ack;  // the reverse direction's pure ACK
    ack.flow.src = spec.flow.dst;
    ack.flow.dst = spec.flow.src;
    std::swap(ack.flow.sport, ack.flow.dport);
    TcpSpec syn = spec;
    syn.flags = SYN;
    syn.flow.sport = 50000;
    Flow uflow;
    const auto u1 = pattern(1000);
    Received rx;
    rx.add(tcp_packet(syn));
    rx.add(data[0]);
    rx.add(tcp_packet(ack));
    rx.add(udp_packet(uflow, u1));
    rx.add(data[1]);
    std::vector<uint8_t> icmp = udp_packet(uflow, u1);
    icmp[9] = 1;
    rx.add(icmp);
    const auto before = rx.storage;
    Merge m(rx.view());
    REQUIRE(m.out.size() == 5);  // SYN, ACK, UDP, ICMP pass; the two data segments merge
    size_t passed = 0;
    for (auto& p : m.out) {
        if (p.vnet.gso_type) continue;
        ++passed;
        CHECK(p.vnet == VirtioNetHdr{});
        bool found = false;
        for (auto& s : rx.storage) found |= s.data() == p.bytes.data();  // not copied
        CHECK(found);
    }
    CHECK(passed == 4);
    CHECK(rx.storage == before);
    CHECK(m.merger.counters().passed == 4);
}

TEST_CASE("a flow's order is kept when one of its packets passes through") {
    TcpSpec spec;
    auto segs = segments(spec, 4, 1000);
    TcpSpec fin = spec;
    fin.seq += 4000;
    fin.id = static_cast<uint16_t>(fin.id + 4);
    fin.flags = ACK | FIN;  // no payload: never merged, ends the flow's unit first
    Received rx;
    for (auto& s : segs) rx.add(s);
    rx.add(tcp_packet(fin));
    Merge m(rx.view());
    REQUIRE(m.out.size() == 2);
    CHECK(m.out[0].vnet.gso_type == VirtioNetHdr::kGsoTcpV4);
    CHECK(parse(m.out[1].bytes).flags == (ACK | FIN));
}

TEST_CASE("a GRO receive of many datagrams merges like separate receives") {
    TcpSpec spec;
    auto segs = segments(spec, 8, 1000);
    std::vector<uint8_t> gro;
    for (auto& s : segs) gro.insert(gro.end(), s.begin(), s.end());
    Packet received;
    received.bytes = gro;
    received.segment_size = static_cast<uint16_t>(segs[0].size());
    Merge m(std::span(&received, 1));
    REQUIRE(m.out.size() == 1);
    CHECK(m.out[0].vnet.gso_size == 1000);
    CHECK(checksums_ok(completed(m.out[0])));
    CHECK(std::vector<uint8_t>(parse(m.out[0].bytes).payload.begin(),
                               parse(m.out[0].bytes).payload.end()) == payload_of(segs));
}

TEST_CASE("more flows than the merger tracks still all arrive, in order per flow") {
    constexpr size_t flows = SegmentMerger::kMaxOpenFlows + 3;
    std::vector<std::vector<std::vector<uint8_t>>> per_flow;
    Received rx;
    for (size_t f = 0; f < flows; ++f) {
        TcpSpec spec;
        spec.flow.sport = static_cast<uint16_t>(30000 + f);
        per_flow.push_back(segments(spec, 5, 1000));
    }
    for (size_t i = 0; i < 5; ++i)
        for (size_t f = 0; f < flows; ++f) rx.add(per_flow[f][i]);
    Merge m(rx.view(), 64, 64);
    std::map<uint16_t, std::vector<uint8_t>> got;
    for (auto& unit : m.out) {
        const auto full = completed(unit);
        REQUIRE(checksums_ok(full));
        auto pl = parse(full).payload;
        const uint16_t sport = static_cast<uint16_t>(full[20] << 8 | full[21]);
        got[sport].insert(got[sport].end(), pl.begin(), pl.end());
    }
    for (size_t f = 0; f < flows; ++f)
        CHECK(got[static_cast<uint16_t>(30000 + f)] == payload_of(per_flow[f]));
    CHECK(m.merger.counters().flows_evicted > 0);
}

TEST_CASE("when output buffers run out, segments pass through unmerged") {
    TcpSpec a, b;
    b.flow.sport = 40001;
    auto sa = segments(a, 3, 1000);
    auto sb = segments(b, 3, 1000);
    Received rx;
    for (auto& s : sa) rx.add(s);
    for (auto& s : sb) rx.add(s);
    Merge m(rx.view(), 1, 1);
    REQUIRE(m.out.size() == 4);  // a merged; b's three pass
    CHECK(m.out[0].vnet.gso_type == VirtioNetHdr::kGsoTcpV4);
    CHECK(m.merger.counters().reject_no_buffer == 1);
}

TEST_CASE("a disabled merger passes every packet as received") {
    TcpSpec spec;
    auto segs = segments(spec, 5, 1000);
    Received rx;
    for (auto& s : segs) rx.add(s);
    Merge m(rx.view(), 2, 2, false);
    REQUIRE(m.out.size() == 5);
    for (size_t i = 0; i < 5; ++i) CHECK(m.out[i].bytes.data() == rx.storage[i].data());
}
