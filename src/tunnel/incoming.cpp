// The incoming decision (protocol.md "Data path", Incoming): an inner packet from the tunnel,
// IPv4 or IPv6.
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

// An ICMPv6 error about a packet this node translated (packet too big, unreachable, ...): found
// by the flow its quote names, and given back the addresses the sender used, outside and in the
// quote, so the sender's kernel matches it to its socket (PMTU discovery, errors).
bool translate_error(PacketView& packet, PathContext& path) {
    auto error = Icmp6Error::of(packet);
    if (!error) return false;
    // The quote is the packet as sent on: (sender's ServiceIP -> instance, ports as sent).
    const FlowKey6 reply{packet.source_v6(), packet.destination_v6(), error->destination_port(),
                         error->source_port(), error->protocol()};
    Flow6* flow = path.cache.find_reply(reply);
    if (!flow) return false;
    packet.rewrite_source(flow->key.destination);
    error->rewrite_quote(flow->key.source, flow->key.destination);
    ++path.counters.incoming_translated;
    return true;
}

template <class A>
Decision decide(PacketView& packet, PathContext& path, L4Csum csum) {
    using F = AddressFamily<A>;
    if (packet.ttl() == 0) return drop(path, DropReason::ttl_expired);
    // Anything not for our subnet would be routed straight back into the TUN.
    const auto& subnet = F::local_subnet(path.node);
    const A dst = F::destination(packet);
    if (!subnet.contains(dst)) return drop(path, DropReason::misdelivered);
    // The subnet's base and the bridge (base + 1), and IPv4's broadcast, are the host's.
    if (F::host_side(subnet, dst)) return drop(path, DropReason::not_namespace);
    if constexpr (std::is_same_v<A, Ipv6>) {
        if (packet.protocol() == ipproto::icmpv6 && !packet.has_ports() && csum == L4Csum::full &&
            translate_error(packet, path))
            return DeliverLocal{};
    }
    if (packet.fragment() != Fragment::non_first) {
        // A reply of a flow we converted arrives from the instance's InstanceNumber ServiceIP:
        // the sender must see it come from the ServiceIP it addressed.
        if (auto* flow = path.cache.find_reply(BasicFlowKey<A>::of(packet))) {
            path.cache.touch(*flow, packet.tcp_flags());
            handshake_rtt::on_reply(*flow, packet.tcp_flags(), path.cache.now_us(),
                                    path.rtt_samples);
            if (packet.fragment() == Fragment::first && path.fragments)
                path.fragments->record(packet, false, FragmentWay<A>{flow->key.destination, dst},
                                       path.cache.now_ms());
            // A reply the kernel did not take: its entry was evicted or expired alone.
            // (A local flow's replies are a flow of their own, offered by the outgoing path.)
            if constexpr (std::is_same_v<A, Ipv4>)
                if (!flow->conversion.local) offer_flow(*flow, path, packet.tcp_flags());
            packet.rewrite_source(flow->key.destination, csum);
            ++path.counters.incoming_translated;
            return DeliverLocal{};
        }
    } else if (path.fragments) {
        // A later fragment of such a reply: the source its first fragment was given.
        if (const auto* way = path.fragments->find<A>(packet, false, path.cache.now_ms())) {
            packet.rewrite_source(way->source, csum);
            ++path.counters.fragments_forwarded;
            ++path.counters.incoming_translated;
            return DeliverLocal{};
        }
    }
    ++path.counters.incoming_unchanged;
    return DeliverLocal{};
}
}  // namespace

Decision decide_incoming(PacketView& packet, PathContext& path, L4Csum csum) {
    if (packet.is_ipv4()) return decide<Ipv4>(packet, path, csum);
    return decide<Ipv6>(packet, path, csum);
}

namespace {
enum class Placed : uint8_t { on_sender, elsewhere, unknown };

// Where the table places an inner source: an instance's nsip (nsipv6), or its InstanceNumber
// ServiceIP (what our outgoing path and a Go agent put as source), on the sending node or another.
template <class A>
Placed placement(const TranslationTable& table, const A& source, Ipv4 sender) {
    using F = AddressFamily<A>;
    if (const InstanceRoute* r = table.find_nsip(source))
        return r->node_ip == sender ? Placed::on_sender : Placed::elsewhere;
    const ServiceGroup* group = table.find_service(source);
    if (!group) return Placed::unknown;
    for (uint32_t slot : group->slots()) {
        const InstanceRoute& r = table.route(slot);
        if (F::own_service_ip(r) == source && r.node_ip == sender) return Placed::on_sender;
    }
    return Placed::elsewhere;  // another node's instance, or a shared (RR, Closest) address
}

template <class A>
std::optional<Decision> admit(const PacketView& packet, PathContext& path, Ipv4 sender,
                              bool after_query) {
    using F = AddressFamily<A>;
    const A src = F::source(packet);
    const NodeIdentity& node = path.node;
    if (!F::container_network(node).contains(src) && !F::service_network(node).contains(src))
        return drop(path, DropReason::foreign_source);
    // Only this node has addresses of its own subnet: a datagram claiming one is forged.
    if (F::local_subnet(node).contains(src)) return drop(path, DropReason::spoofed_source);
    switch (placement(path.table, src, sender)) {
        case Placed::on_sender:
            return std::nullopt;
        case Placed::elsewhere:
            return drop(path, DropReason::spoofed_source);
        case Placed::unknown:
            break;
    }
    if (after_query) return drop(path, DropReason::unknown_source);
    return AwaitQuery{src};
}
}  // namespace

std::optional<Decision> admit_incoming(const PacketView& packet, PathContext& path, Ipv4 sender,
                                       bool after_query) {
    if (packet.is_ipv4()) return admit<Ipv4>(packet, path, sender, after_query);
    return admit<Ipv6>(packet, path, sender, after_query);
}

Decision decide_incoming(std::span<uint8_t> packet, PathContext& path, L4Csum csum) {
    auto parsed = PacketView::parse(packet);
    if (!parsed) return drop(path, DropReason::malformed);
    return decide_incoming(*parsed, path, csum);
}

}  // namespace nm
