// The outgoing decision (protocol.md "Data path", Outgoing): a packet read from the TUN.
#include "tunnel/decision.hpp"
#include "tunnel/handshake_rtt.hpp"

namespace nm {

namespace {

Decision drop(PathContext& path, DropReason reason) {
    path.counters.drop(reason);
    return Drop{reason};
}

Decision route_to(const NodeIdentity& node, Ipv4 ip, uint16_t port) {
    if (node.is_self(ip, port)) return DeliverLocal{};
    return SendTo{ip, port};
}

// A cached flow made before the table last lost or changed an instance: is its instance still
// there, still carrying the ServiceIP, and is the sender still who it was? Refreshes the route.
bool revalidate(Flow& flow, const PathContext& path) {
    const auto& table = path.table;
    auto slot = table.slot_of_nsip(flow.conversion.new_destination);
    if (!slot) return false;
    const ServiceGroup* group = table.find_service(flow.key.destination);
    if (!group || std::find(group->slots.begin(), group->slots.end(), *slot) == group->slots.end())
        return false;
    const InstanceRoute* sender = table.find_nsip(flow.key.source);
    if (!sender || sender->own_service_ip != flow.conversion.new_source) return false;
    const InstanceRoute& r = table.route(*slot);
    flow.conversion.reply_source = r.own_service_ip;
    flow.conversion.node_ip = r.node_ip;
    flow.conversion.node_port = r.node_port;
    flow.conversion.local = path.node.is_self(r.node_ip, r.node_port);
    flow.route_epoch = table.route_epoch();
    return true;
}

Decision apply(PacketView& packet, const Conversion& c, L4Csum csum) {
    packet.rewrite_addresses(c.new_source, c.new_destination, csum);
    if (c.local) return DeliverLocal{};
    return SendTo{c.node_ip, c.node_port};
}

// Traffic straight to an nsip in another node's subnet: tunnelled untranslated.
Decision direct(PacketView& packet, PathContext& path, bool after_query) {
    const Ipv4 dst = packet.destination();
    const InstanceRoute* r = path.table.find_nsip(dst);
    if (!r) return after_query ? drop(path, DropReason::unknown_nsip) : Decision{AwaitQuery{dst}};
    // The table places it here although it is outside our subnet: sending it to the TUN again
    // would loop.
    if (path.node.is_self(r->node_ip, r->node_port)) return drop(path, DropReason::local_loop);
    ++path.counters.outgoing_direct;
    path.uses.mark(dst);
    return SendTo{r->node_ip, r->node_port};
}

// A non-first fragment has no ports, so no flow: only an InstanceNumber ServiceIP names its
// instance without one.
Decision fragment(PacketView& packet, PathContext& path, L4Csum csum, bool after_query) {
    const Ipv4 dst = packet.destination();
    const ServiceGroup* group = path.table.find_service(dst);
    if (!group)
        return after_query ? drop(path, DropReason::unknown_service) : Decision{AwaitQuery{dst}};
    if (group->type != IpType::InstanceNumber) return drop(path, DropReason::fragment);
    const InstanceRoute* sender = path.table.find_nsip(packet.source());
    if (!sender || sender->own_service_ip.value == 0)
        return drop(path, DropReason::no_sender_entry);
    const InstanceRoute& r = path.table.route(group->slots.front());
    packet.rewrite_addresses(sender->own_service_ip, r.nsip, csum);
    ++path.counters.fragments_forwarded;
    return route_to(path.node, r.node_ip, r.node_port);
}

}  // namespace

Decision decide_outgoing(PacketView& packet, PathContext& path, L4Csum csum, bool after_query) {
    if (!packet.is_ipv4()) return drop(path, DropReason::not_ipv4);
    if (packet.ttl() == 0) return drop(path, DropReason::ttl_expired);
    const Ipv4 dst = packet.destination();
    const NodeIdentity& node = path.node;
    if (node.local_subnet.contains(dst)) return drop(path, DropReason::local_loop);
    if (!node.service_network.contains(dst)) {
        if (!node.container_network.contains(dst)) return drop(path, DropReason::not_routable);
        return direct(packet, path, after_query);
    }
    if (packet.fragment() == Fragment::non_first) return fragment(packet, path, csum, after_query);

    const FlowKey key = FlowKey::of(packet);
    if (Flow* flow = path.cache.find(key)) {
        if (flow->route_epoch == path.table.route_epoch() || revalidate(*flow, path)) {
            path.uses.mark_flow(dst, flow->last_used_ms, path.cache.now_ms());
            path.cache.touch(*flow, packet.tcp_flags());
            handshake_rtt::on_outgoing(*flow, packet.tcp_flags());
            ++path.counters.outgoing_cached;
            return apply(packet, flow->conversion, csum);
        }
        path.cache.erase(key);  // its instance is gone: choose again
    }

    const ServiceGroup* group = path.table.find_service(dst);
    if (!group)
        return after_query ? drop(path, DropReason::unknown_service) : Decision{AwaitQuery{dst}};
    const InstanceRoute* sender = path.table.find_nsip(packet.source());
    if (!sender || sender->own_service_ip.value == 0)
        return drop(path, DropReason::no_sender_entry);
    const uint32_t slot = path.balancer.choose(dst, *group, path.table, node, path.rtt);
    const InstanceRoute& r = path.table.route(slot);
    const Conversion conversion{r.nsip,           sender->own_service_ip,
                                r.own_service_ip, r.node_ip,
                                r.node_port,      node.is_self(r.node_ip, r.node_port)};
    Flow& flow = path.cache.insert(key, conversion, path.table.route_epoch());
    path.cache.touch(flow, packet.tcp_flags());
    handshake_rtt::on_new_flow(flow, packet.tcp_flags(), path.cache.now_us());
    path.uses.mark(dst);
    ++path.counters.outgoing_new_flows;
    return apply(packet, conversion, csum);
}

Decision decide_outgoing(std::span<uint8_t> bytes, PathContext& path, L4Csum csum,
                         bool after_query) {
    auto packet = PacketView::parse(bytes);
    if (!packet) return drop(path, DropReason::malformed);
    return decide_outgoing(*packet, path, csum, after_query);
}

}  // namespace nm
