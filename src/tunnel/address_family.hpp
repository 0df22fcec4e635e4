#pragma once
// What the data path's decisions read per address family, so that one template serves IPv4 and
// IPv6 alike (protocol.md: the same translation and policies for both families).
#include "core/packet.hpp"
#include "table/translation_table.hpp"
#include "tunnel/node_identity.hpp"

namespace nm {

template <class Address>
struct AddressFamily;

template <>
struct AddressFamily<Ipv4> {
    static Ipv4 source(const PacketView& p) { return p.source(); }
    static Ipv4 destination(const PacketView& p) { return p.destination(); }
    static const Cidr& local_subnet(const NodeIdentity& n) { return n.local_subnet; }
    static const Cidr& service_network(const NodeIdentity& n) { return n.networks.service_network; }
    static const Cidr& container_network(const NodeIdentity& n) {
        return n.networks.container_network;
    }
    // An address of the node's subnet that is no namespace's: base, bridge (base + 1), broadcast.
    static bool host_side(const Cidr& subnet, Ipv4 ip) {
        return ip == subnet.host(0) || ip == subnet.host(1) || ip == subnet.host(subnet.size() - 1);
    }
    static Ipv4 nsip(const InstanceRoute& r) { return r.nsip; }
    static Ipv4 own_service_ip(const InstanceRoute& r) { return r.own_service_ip; }
};

template <>
struct AddressFamily<Ipv6> {
    static Ipv6 source(const PacketView& p) { return p.source_v6(); }
    static Ipv6 destination(const PacketView& p) { return p.destination_v6(); }
    static const Cidr6& local_subnet(const NodeIdentity& n) { return n.local_subnet_v6; }
    static const Cidr6& service_network(const NodeIdentity& n) {
        return n.networks.service_network_v6;
    }
    static const Cidr6& container_network(const NodeIdentity& n) {
        return n.networks.container_network_v6;
    }
    // The /120's base (the subnet-router anycast) and the bridge (base + 1); no broadcast.
    static bool host_side(const Cidr6& subnet, const Ipv6& ip) {
        return ip == subnet.host(0) || ip == subnet.host(1);
    }
    static const Ipv6& nsip(const InstanceRoute& r) { return r.nsipv6; }
    static const Ipv6& own_service_ip(const InstanceRoute& r) { return r.own_service_ipv6; }
};

}  // namespace nm
