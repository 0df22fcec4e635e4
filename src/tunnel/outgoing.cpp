// The outgoing decision (protocol.md "Data path", Outgoing): a packet read from the TUN. One
// template serves both address families; the underlay (node addresses) is IPv4 for both.
#include <type_traits>

#include "core/icmp6_error.hpp"
#include "tunnel/address_family.hpp"
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

// A key the table does not know: ask the cluster, or drop it once asked.
template <class A>
Decision unknown(PathContext& path, const A& key, DropReason reason, bool after_query) {
    return after_query ? drop(path, reason) : Decision{AwaitQuery{key}};
}

void mark_use(PathContext& path, Ipv4 destination) {
    path.uses.mark(destination);
}
void mark_use(PathContext&, const Ipv6&) {}  // interest is kept by IPv4 ServiceIPs
void mark_flow_use(PathContext& path, Ipv4 destination, uint32_t last_ms) {
    path.uses.mark_flow(destination, last_ms, path.cache.now_ms());
}
void mark_flow_use(PathContext&, const Ipv6&, uint32_t) {}

// The route of the instance a cached conversion chose, as the table has it now: nullptr when
// the instance is gone, no longer carries the flow's ServiceIP, or the sender is no longer who
// it was (its InstanceNumber ServiceIP changed).
template <class A>
const InstanceRoute* conversion_route(const TranslationTable& table, const BasicFlowKey<A>& key,
                                      const BasicConversion<A>& conversion) {
    using F = AddressFamily<A>;
    auto slot = table.slot_of_nsip(conversion.new_destination);
    if (!slot) return nullptr;
    const ServiceGroup* group = table.find_service(key.destination);
    if (!group || std::ranges::find(group->slots(), *slot) == group->slots().end()) return nullptr;
    const InstanceRoute* sender = table.find_nsip(key.source);
    if (!sender || F::own_service_ip(*sender) != conversion.new_source) return nullptr;
    return &table.route(*slot);
}

// A cached flow made before the table last lost or changed an instance: is its instance still
// there, still carrying the ServiceIP, and is the sender still who it was? Refreshes the route.
template <class A>
bool revalidate(BasicFlow<A>& flow, const PathContext& path) {
    const InstanceRoute* r = conversion_route(path.table, flow.key, flow.conversion);
    if (!r) return false;
    flow.conversion.reply_source = AddressFamily<A>::own_service_ip(*r);
    flow.conversion.node_ip = r->node_ip;
    flow.conversion.node_port = r->node_port;
    flow.conversion.local = path.node.is_self(r->node_ip, r->node_port);
    flow.route_epoch = path.table.route_epoch();
    flow.offered_ms = 0;  // the kernel's copy may be gone: offer the refreshed route at once
    return true;
}

template <class A>
void offer(BasicFlow<A>& flow, PathContext& path, uint8_t tcp_flags) {
    if constexpr (std::is_same_v<A, Ipv4>) offer_flow(flow, path, tcp_flags);
}

// A first fragment (the one with ports) notes its way, for its later fragments: `packet` as read.
template <class A>
void note_first_fragment(const PacketView& packet, PathContext& path, const BasicConversion<A>& c) {
    if (packet.fragment() != Fragment::first || !path.fragments) return;
    path.fragments->record(
        packet, true,
        FragmentWay<A>{c.new_source, c.new_destination, c.node_ip, c.node_port, c.local},
        path.cache.now_ms());
}

template <class A>
Decision apply(PacketView& packet, const BasicConversion<A>& c, L4Csum csum) {
    packet.rewrite_addresses(c.new_source, c.new_destination, csum);
    if (c.local) return DeliverLocal{};
    return SendTo{c.node_ip, c.node_port};
}

// Traffic straight to an nsip in another node's subnet: tunnelled untranslated.
template <class A>
Decision direct(PacketView& packet, PathContext& path, bool after_query) {
    const A dst = AddressFamily<A>::destination(packet);
    const InstanceRoute* r = path.table.find_nsip(dst);
    if (!r) return unknown(path, dst, DropReason::unknown_nsip, after_query);
    // The table places it here although it is outside our subnet: sending it to the TUN again
    // would loop.
    if (path.node.is_self(r->node_ip, r->node_port)) return drop(path, DropReason::local_loop);
    ++path.counters.outgoing_direct;
    mark_use(path, dst);
    return SendTo{r->node_ip, r->node_port};
}

// A non-first fragment has no ports, so no flow: it goes the way its first fragment went, or, not
// knowing that, only an InstanceNumber ServiceIP names its instance without one.
template <class A>
Decision fragment(PacketView& packet, PathContext& path, L4Csum csum, bool after_query) {
    using F = AddressFamily<A>;
    if (path.fragments)
        if (const auto* way = path.fragments->find<A>(packet, true, path.cache.now_ms())) {
            packet.rewrite_addresses(way->source, way->destination, csum);
            ++path.counters.fragments_forwarded;
            if (way->local) return DeliverLocal{};
            return SendTo{way->node_ip, way->node_port};
        }
    const A dst = F::destination(packet);
    const ServiceGroup* group = path.table.find_service(dst);
    if (!group) return unknown(path, dst, DropReason::unknown_service, after_query);
    if (group->type != IpType::InstanceNumber) return drop(path, DropReason::fragment);
    const InstanceRoute* sender = path.table.find_nsip(F::source(packet));
    if (!sender || F::own_service_ip(*sender) == A{})
        return drop(path, DropReason::no_sender_entry);
    const InstanceRoute& r = path.table.route(group->slots().front());
    if (F::nsip(r) == A{}) return drop(path, DropReason::no_nsipv6);
    packet.rewrite_addresses(F::own_service_ip(*sender), F::nsip(r), csum);
    ++path.counters.fragments_forwarded;
    return route_to(path.node, r.node_ip, r.node_port);
}

// An ICMPv6 error about a packet that came through the tunnel, sent by a local instance or by
// this host itself (packet too big, unreachable): it goes back to where that packet came from.
// - About a reply this node translated back (the quote: ServiceIP -> local sender): it takes the
//   flow's way, its quote given the addresses the instance's peer sent.
// - About a packet delivered here (the quote: a sender's InstanceNumber ServiceIP -> a local
//   nsipv6): it goes to that sender as if the addressed instance had sent it, so the sender's
//   node finds the flow by it. Anything else is decided as any other packet.
std::optional<Decision> route_error(PacketView& packet, PathContext& path) {
    auto error = Icmp6Error::of(packet);
    if (!error) return std::nullopt;
    const FlowKey6 key{error->destination(), error->source(), error->destination_port(),
                       error->source_port(), error->protocol()};
    if (key.destination == packet.destination_v6()) {
        if (Flow6* flow = path.cache.find(key)) {
            const Conversion6& c = flow->conversion;
            error->rewrite_quote(c.new_destination, c.new_source);
            ++path.counters.outgoing_cached;
            return apply(packet, c, L4Csum::full);
        }
    }
    const ServiceGroup* group = path.table.find_service(packet.destination_v6());
    const InstanceRoute* addressed = path.table.find_nsip(error->destination());
    if (!group || group->type != IpType::InstanceNumber || !addressed ||
        addressed->own_service_ipv6.is_unspecified())
        return std::nullopt;
    const InstanceRoute& r = path.table.route(group->slots().front());
    if (r.nsipv6.is_unspecified()) return std::nullopt;
    packet.rewrite_addresses(addressed->own_service_ipv6, r.nsipv6);
    ++path.counters.outgoing_direct;
    return route_to(path.node, r.node_ip, r.node_port);
}

template <class A>
Decision decide(PacketView& packet, PathContext& path, L4Csum csum, bool after_query) {
    using F = AddressFamily<A>;
    if (packet.ttl() == 0) return drop(path, DropReason::ttl_expired);
    const A dst = F::destination(packet);
    const NodeIdentity& node = path.node;
    if (F::local_subnet(node).contains(dst)) return drop(path, DropReason::local_loop);
    if (!F::service_network(node).contains(dst)) {
        if (!F::container_network(node).contains(dst)) return drop(path, DropReason::not_routable);
        return direct<A>(packet, path, after_query);
    }
    if (packet.fragment() == Fragment::non_first)
        return fragment<A>(packet, path, csum, after_query);
    if constexpr (std::is_same_v<A, Ipv6>) {
        if (packet.protocol() == ipproto::icmpv6 && !packet.has_ports() && csum == L4Csum::full)
            if (auto d = route_error(packet, path)) return *d;
    }

    const auto key = BasicFlowKey<A>::of(packet);
    if (auto* flow = path.cache.find(key)) {
        if (flow->route_epoch == path.table.route_epoch() || revalidate(*flow, path)) {
            mark_flow_use(path, dst, flow->last_used_ms);
            path.cache.touch(*flow, packet.tcp_flags());
            handshake_rtt::on_outgoing(*flow, packet.tcp_flags());
            ++path.counters.outgoing_cached;
            offer(*flow, path, packet.tcp_flags());
            note_first_fragment(packet, path, flow->conversion);
            return apply(packet, flow->conversion, csum);
        }
        path.cache.erase(key);  // its instance is gone: choose again
    }

    const ServiceGroup* group = path.table.find_service(dst);
    if (!group) return unknown(path, dst, DropReason::unknown_service, after_query);
    const InstanceRoute* sender = path.table.find_nsip(F::source(packet));
    if (!sender || F::own_service_ip(*sender) == A{})
        return drop(path, DropReason::no_sender_entry);
    const uint32_t slot = path.balancer.choose(dst, *group, path.table, node, path.rtt);
    const InstanceRoute& r = path.table.route(slot);
    // An entry may list an IPv6 ServiceIP without having an nsipv6 itself.
    if (F::nsip(r) == A{}) return drop(path, DropReason::no_nsipv6);
    const BasicConversion<A> conversion{F::nsip(r),           F::own_service_ip(*sender),
                                        F::own_service_ip(r), r.node_ip,
                                        r.node_port,          node.is_self(r.node_ip, r.node_port)};
    auto& flow = path.cache.insert(key, conversion, path.table.route_epoch());
    path.cache.touch(flow, packet.tcp_flags());
    handshake_rtt::on_new_flow(flow, packet.tcp_flags(), path.cache.now_us());
    mark_use(path, dst);
    ++path.counters.outgoing_new_flows;
    offer(flow, path, packet.tcp_flags());
    note_first_fragment(packet, path, conversion);
    return apply(packet, conversion, csum);
}

}  // namespace

void offer_flow(Flow& flow, PathContext& path, uint8_t tcp_flags) {
    if (!path.offload) return;
    const uint32_t now = path.cache.now_ms() | 1;  // 0 means "not offered"
    if (flow.offered_ms != 0) {
        constexpr uint8_t syn_fin_rst = 0x07;
        if (flow.key.protocol == ipproto::tcp && (tcp_flags & syn_fin_rst)) return;
        if (now - flow.offered_ms < 1000) return;
    }
    flow.offered_ms = now;
    Ipv4 source = flow.conversion.new_source;
    if (flow.conversion.local) {
        // Delivered here, its packets take the incoming path: a reply of another local flow
        // gets the ServiceIP that flow's sender addressed.
        const Conversion& c = flow.conversion;
        const FlowKey delivered{c.new_source, c.new_destination, flow.key.source_port,
                                flow.key.destination_port, flow.key.protocol};
        if (const Flow* answered = path.cache.find_reply(delivered))
            source = answered->key.destination;
    }
    path.offload->offer(flow.key, flow.conversion, source, path.table.version());
}

bool conversion_current(const TranslationTable& table, const FlowKey& key,
                        const Conversion& conversion) {
    const InstanceRoute* r = conversion_route(table, key, conversion);
    if (r && conversion.local) return true;  // an nsip of this node's subnet stays here
    return r && r->node_ip == conversion.node_ip && r->node_port == conversion.node_port &&
           r->own_service_ip == conversion.reply_source;
}

std::string to_string(const QueryKey& key) {
    return std::visit([](const auto& k) { return k.to_string(); }, key);
}

Decision decide_outgoing(PacketView& packet, PathContext& path, L4Csum csum, bool after_query) {
    if (packet.is_ipv4()) return decide<Ipv4>(packet, path, csum, after_query);
    return decide<Ipv6>(packet, path, csum, after_query);
}

Decision decide_outgoing(std::span<uint8_t> bytes, PathContext& path, L4Csum csum,
                         bool after_query) {
    auto packet = PacketView::parse(bytes);
    if (!packet) return drop(path, DropReason::malformed);
    return decide_outgoing(*packet, path, csum, after_query);
}

}  // namespace nm
