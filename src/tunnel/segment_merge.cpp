// SegmentMerger: consecutive TCP segments of one flow become one super-segment (segmentation.hpp).
// The rules follow the kernel's own TCP GRO, so what we build is what the kernel would have built:
// equal headers except IP length/id/checksum and TCP seq/checksum, contiguous sequence numbers,
// every segment the first one's size except a shorter last, FIN/PSH only on the last.
#include <optional>

#include "core/checksum.hpp"
#include "tunnel/segmentation.hpp"

namespace nm {
namespace {

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kUrg = 0x20, kCwr = 0x80;
constexpr uint8_t kNeverMerged = kSyn | kRst | kUrg | kCwr;
constexpr uint8_t kEndsUnit = kFin | kPsh;

struct TcpSegment {
    bool v6 = false;
    size_t l4 = 0, headers = 0, payload = 0;
    uint32_t seq = 0;
    uint8_t flags = 0;
};

// A TCP packet whose IP length matches its datagram exactly, not fragmented, no IPv6 extension
// headers. Anything else is passed through untouched.
std::optional<TcpSegment> parse_tcp(std::span<const uint8_t> p) {
    TcpSegment s;
    if (p.size() < 40) return std::nullopt;
    if ((p[0] >> 4) == 4) {
        s.l4 = size_t{p[0] & 0x0fu} * 4;
        if (s.l4 < 20 || csum::load_be16(&p[2]) != p.size() || p[9] != 6) return std::nullopt;
        if ((csum::load_be16(&p[6]) & 0x3fff) != 0) return std::nullopt;  // MF or an offset
    } else if ((p[0] >> 4) == 6) {
        s.v6 = true;
        s.l4 = 40;
        if (p.size() < 60 || 40 + size_t{csum::load_be16(&p[4])} != p.size() || p[6] != 6)
            return std::nullopt;
    } else {
        return std::nullopt;
    }
    if (s.l4 + 20 > p.size()) return std::nullopt;
    s.headers = s.l4 + static_cast<size_t>(p[s.l4 + 12] >> 4) * 4;
    if (s.headers < s.l4 + 20 || s.headers > p.size()) return std::nullopt;
    s.payload = p.size() - s.headers;
    s.seq = csum::load_be32(&p[s.l4 + 4]);
    s.flags = p[s.l4 + 13];
    return s;
}

bool same_flow(std::span<const uint8_t> a, bool a_v6, size_t a_l4, std::span<const uint8_t> b,
               const TcpSegment& s) {
    if (a_v6 != s.v6) return false;
    const bool addresses =
        s.v6 ? std::memcmp(&a[8], &b[8], 32) == 0 : std::memcmp(&a[12], &b[12], 8) == 0;
    return addresses && std::memcmp(&a[a_l4], &b[s.l4], 4) == 0;
}

}  // namespace

void SegmentMerger::merge(std::span<const Packet> received, PacketBatch& out) {
    for (const Packet& r : received)
        for_each_datagram(r, [&](std::span<uint8_t> d) { enabled_ ? add(d, out) : pass(d, out); });
    // Oldest first, so each flow's unit lands where its first segment would have.
    for (;;) {
        Unit* oldest = nullptr;
        for (Unit& u : units_)
            if (u.open && (!oldest || u.started < oldest->started)) oldest = &u;
        if (!oldest) break;
        flush(*oldest, out);
    }
}

void SegmentMerger::pass(std::span<uint8_t> packet, PacketBatch& out) {
    Packet p;
    p.bytes = packet;
    out.push(p);
    ++counters_.passed;
}

void SegmentMerger::add(std::span<uint8_t> packet, PacketBatch& out) {
    const auto s = parse_tcp(packet);
    if (!s) return pass(packet, out);

    Unit* unit = nullptr;
    for (Unit& u : units_)
        if (u.open && same_flow(u.first, u.v6, u.l4, packet, *s)) unit = &u;

    if (unit) {
        const uint8_t* f = unit->first.data();
        const uint8_t* p = packet.data();
        const uint8_t* ft = f + unit->l4;
        const uint8_t* pt = p + s->l4;
        uint64_t* reject = nullptr;
        if (s->payload == 0 || (s->flags & kNeverMerged) ||
            (pt[13] & static_cast<uint8_t>(~kEndsUnit)) != ft[13])
            reject = &counters_.reject_flags;
        else if (s->seq != unit->next_seq)
            reject = &counters_.reject_sequence;
        else if (s->l4 != unit->l4 || s->headers != unit->headers ||
                 (s->v6 ? std::memcmp(f, p, 4) != 0 || std::memcmp(f + 6, p + 6, 2) != 0
                        : std::memcmp(f, p, 2) != 0 || std::memcmp(f + 6, p + 6, 4) != 0 ||
                              std::memcmp(f + 20, p + 20, s->l4 - 20) != 0) ||
                 std::memcmp(ft + 8, pt + 8, 5) != 0 ||                        // ack, data offset
                 std::memcmp(ft + 14, pt + 14, 2) != 0 ||                      // window
                 std::memcmp(ft + 18, pt + 18, s->headers - s->l4 - 18) != 0)  // urg, options
            reject = &counters_.reject_header;
        else if (!s->v6 && csum::load_be16(p + 4) != unit->next_id)
            reject = &counters_.reject_ip_id;
        else if (s->payload > unit->segment ||
                 unit->length + s->payload > (s->v6 ? 65535 + 40 : 65535) ||
                 unit->length + s->payload > out.buffer_size())
            reject = &counters_.reject_size;

        if (!reject) {
            if (!unit->built) {
                const auto buffer = out.next_buffer();
                if (buffer.empty()) {
                    ++counters_.reject_no_buffer;
                    flush(*unit, out);
                    return pass(packet, out);
                }
                unit->out_index = out.size();
                unit->built = out.commit(buffer.size()).bytes.data();
                std::memcpy(unit->built, unit->first.data(), unit->first.size());
            }
            std::memcpy(unit->built + unit->length, p + s->headers, s->payload);
            unit->length += s->payload;
            unit->next_seq += static_cast<uint32_t>(s->payload);
            ++unit->next_id;
            ++unit->count;
            unit->end_flags = s->flags & kEndsUnit;
            if (unit->end_flags || s->payload < unit->segment) flush(*unit, out);
            return;
        }
        ++*reject;
        flush(*unit, out);
    }

    // This packet may begin a unit of its own.
    if (s->payload == 0 || (s->flags & (kNeverMerged | kEndsUnit))) return pass(packet, out);
    Unit* slot = nullptr;
    for (Unit& u : units_)
        if (!u.open) slot = &u;
    if (!slot) {
        slot = &units_[0];
        for (Unit& u : units_)
            if (u.started < slot->started) slot = &u;
        ++counters_.flows_evicted;
        flush(*slot, out);
    }
    Unit& u = *slot;
    u = Unit{};
    u.open = true;
    u.v6 = s->v6;
    u.first = packet;
    u.length = packet.size();
    u.l4 = s->l4;
    u.headers = s->headers;
    u.segment = s->payload;
    u.next_seq = s->seq + static_cast<uint32_t>(s->payload);
    u.next_id = s->v6 ? 0 : static_cast<uint16_t>(csum::load_be16(&packet[4]) + 1);
    u.count = 1;
    u.started = clock_++;
}

void SegmentMerger::flush(Unit& unit, PacketBatch& out) {
    unit.open = false;
    if (unit.count == 1) return pass(unit.first, out);
    uint8_t* ip = unit.built;
    if (unit.v6) {
        csum::store_be16(ip + 4, static_cast<uint16_t>(unit.length - 40));
    } else {
        csum::store_be16(ip + 2, static_cast<uint16_t>(unit.length));
        csum::set_ipv4_header_checksum(ip);
    }
    uint8_t* tcp = ip + unit.l4;
    tcp[13] |= unit.end_flags;
    // A partial checksum: the pseudo-header sum, not complemented; the kernel (or whoever
    // segments the unit again) adds the TCP header and payload.
    csum::store_native16(tcp + 16, csum::fold(csum::pseudo_header_native(
                                       ip, 6, static_cast<uint32_t>(unit.length - unit.l4))));
    Packet& p = out[unit.out_index];
    p.bytes = {ip, unit.length};
    p.vnet.flags = VirtioNetHdr::kNeedsCsum;
    p.vnet.gso_type = unit.v6 ? VirtioNetHdr::kGsoTcpV6 : VirtioNetHdr::kGsoTcpV4;
    p.vnet.hdr_len = static_cast<uint16_t>(unit.headers);
    p.vnet.gso_size = static_cast<uint16_t>(unit.segment);
    p.vnet.csum_start = static_cast<uint16_t>(unit.l4);
    p.vnet.csum_offset = 16;
    ++counters_.units;
    counters_.unit_segments += unit.count;
}

}  // namespace nm
