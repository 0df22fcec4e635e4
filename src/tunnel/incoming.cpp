// The incoming decision (protocol.md "Data path", Incoming): an inner packet from the tunnel.
#include "tunnel/decision.hpp"
#include "tunnel/handshake_rtt.hpp"

namespace nm {

namespace {
Decision drop(PathContext& path, DropReason reason) {
    path.counters.drop(reason);
    return Drop{reason};
}
}  // namespace

Decision decide_incoming(PacketView& packet, PathContext& path, L4Csum csum) {
    if (!packet.is_ipv4()) return drop(path, DropReason::not_ipv4);
    if (packet.ttl() == 0) return drop(path, DropReason::ttl_expired);
    // Anything not for our subnet would be routed straight back into the TUN.
    if (!path.node.local_subnet.contains(packet.destination()))
        return drop(path, DropReason::misdelivered);
    if (packet.fragment() != Fragment::non_first) {
        // A reply of a flow we converted arrives from the instance's InstanceNumber ServiceIP:
        // the sender must see it come from the ServiceIP it addressed.
        if (Flow* flow = path.cache.find_reply(FlowKey::of(packet))) {
            path.cache.touch(*flow, packet.tcp_flags());
            handshake_rtt::on_reply(*flow, packet.tcp_flags(), path.cache.now_us(),
                                    path.rtt_samples);
            packet.rewrite_source(flow->key.destination, csum);
            ++path.counters.incoming_translated;
            return DeliverLocal{};
        }
    }
    ++path.counters.incoming_unchanged;
    return DeliverLocal{};
}

Decision decide_incoming(std::span<uint8_t> bytes, PathContext& path, L4Csum csum) {
    auto packet = PacketView::parse(bytes);
    if (!packet) return drop(path, DropReason::malformed);
    return decide_incoming(*packet, path, csum);
}

}  // namespace nm
