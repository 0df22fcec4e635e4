// Attaching namespaces to the bridge, and detaching them.
#include <algorithm>
#include <memory>

#include "core/log.hpp"
#include "env/netns.hpp"
#include "env/node_network.hpp"
#include "env/node_network_impl.hpp"
#include "env/undo_stack.hpp"

namespace nm {

namespace {

constexpr unsigned link_numbers = 100000;  // "<prefix>v<n>" stays within 15 characters

// Checks the request before anything changes: names, ports against the tunnel and against
// other attachments' host ports.
Result<void> check_request(const NodeNetwork::Impl& s, const AttachOptions& o) {
    if (o.inner_link.empty() || o.inner_link.size() > 15 ||
        o.inner_link.find_first_of("/: \t") != std::string::npos)
        return fail(Errc::invalid_argument,
                    "inner interface name \"" + o.inner_link + "\" is not a valid interface name");
    for (size_t i = 0; i < o.ports.size(); ++i) {
        const PortMapping& p = o.ports[i];
        if (p.host_port == 0 || p.container_port == 0)
            return fail(Errc::invalid_argument,
                        "port mapping " + to_string(p) + ": ports must be 1..65535");
        if (p.proto == L4Proto::udp && p.host_port == s.config.tunnel_port)
            return fail(Errc::conflict, "port mapping " + to_string(p) + ": UDP port " +
                                            std::to_string(p.host_port) + " is the tunnel's");
        for (size_t j = 0; j < i; ++j)
            if (o.ports[j].host_port == p.host_port && o.ports[j].proto == p.proto)
                return fail(Errc::invalid_argument,
                            "port mapping " + to_string(p) + ": host port mapped twice");
        for (const auto& [link, att] : s.attachments)
            for (const PortMapping& q : att.ports)
                if (q.host_port == p.host_port && q.proto == p.proto)
                    return fail(Errc::conflict, "port mapping " + to_string(p) + ": host port " +
                                                    std::to_string(p.host_port) + "/" +
                                                    std::string(to_string(p.proto)) +
                                                    " is already mapped to " +
                                                    att.address.to_string() + ":" +
                                                    std::to_string(q.container_port));
    }
    return {};
}

// The namespace's addresses from the pools: IPv4 (the requested one or the next free) and,
// when the node has IPv6, the next free IPv6 one.
Result<void> take_addresses(NodeNetwork::Impl& s, const AttachOptions& o, Attachment& att,
                            UndoStack& undo) {
    att.prefix = s.config.subnet.prefix;
    if (o.address) {
        NM_TRY(s.pool.reserve(*o.address));
        att.address = *o.address;
    } else {
        auto got = s.pool.allocate();
        if (!got) return tl::unexpected(got.error());
        att.address = *got;
    }
    undo.push([&s, ip = att.address] { s.pool.release(ip); });
    if (s.pool6) {
        auto got = s.pool6->allocate();
        if (!got) return tl::unexpected(got.error());
        att.address_v6 = *got;
        att.prefix_v6 = s.pool6->subnet().prefix;
        undo.push([&s, ip = *got] { s.pool6->release(ip); });
    }
    return {};
}

// The namespace's IPv6 address (no DAD: usable at once), its networks and default route via
// the bridge. Whatever it adds goes with the veth on failure.
Result<void> wire_ipv6(NodeNetwork::Impl& s, RouteSocket& inside, int inner,
                       const Attachment& att) {
    const NodeNetworkConfig& c = s.config;
    NM_TRY(s.step("namespace IPv6 address"));
    NM_TRY(inside.add_address(inner, att.inner_link, *att.address_v6, att.prefix_v6));
    const Ipv6 gateway = s.pool6->gateway();
    for (const Cidr6& net : {c.networks.container_network_v6, c.networks.service_network_v6}) {
        NM_TRY(s.step("namespace IPv6 route"));
        NM_TRY(inside.add_route(net, inner, gateway));
    }
    if (c.namespace_default_route) {
        NM_TRY(s.step("namespace IPv6 default route"));
        if (auto r = inside.add_route(Cidr6{Ipv6{}, 0}, inner, gateway); !r) {
            if (r.error().code != Errc::exists) return tl::unexpected(r.error());
            NM_LOG(debug, "env") << att.host_link << ": namespace keeps its own IPv6 default route";
        }
    }
    return {};
}

// The veth pair, the namespace side's configuration and the port mappings, for a namespace
// behind `netns_fd`. Fills att.host_link/inner_link/ports.
Result<void> wire_namespace(NodeNetwork::Impl& s, int netns_fd, const AttachOptions& o,
                            Attachment& att, UndoStack& undo) {
    const NodeNetworkConfig& c = s.config;
    NM_TRY(s.step("open netlink socket in namespace"));
    auto opened = RouteSocket::open_in(netns_fd);
    if (!opened) return tl::unexpected(opened.error());
    // Shared with the undo steps, which run after this function returns.
    auto inside = std::make_shared<RouteSocket>(std::move(*opened));

    att.host_link = s.next_host_link();
    att.inner_link = o.inner_link;
    NM_TRY(s.step("create veth"));
    NM_TRY(s.host.add_veth({att.host_link, o.inner_link, netns_fd, s.bridge_ifindex, c.mtu, true}));
    undo.push([&s, link = att.host_link] { (void)s.host.delete_link(link); });
    // From here on the namespace side goes away with the veth.

    NM_TRY(s.step("lo up"));
    auto lo = inside->link("lo");
    if (!lo) return tl::unexpected(lo.error());
    if (!lo->up) {
        NM_TRY(inside->set_link(lo->ifindex, "lo", true, 0));
        // A process's namespace outlives a failed attach: leave its lo as it was.
        // (Bringing lo up gave it 127.0.0.1/8, which going down does not take away.)
        undo.push([inside, index = lo->ifindex] {
            (void)inside->set_link_down(index, "lo");
            (void)inside->delete_address(index, "lo", Ipv4{0x7f000001}, 8);
        });
    }
    NM_TRY(s.step("find inner link"));
    auto inner = inside->ifindex(o.inner_link);
    if (!inner) return tl::unexpected(inner.error());
    NM_TRY(s.step("namespace address"));
    NM_TRY(inside->add_address(*inner, o.inner_link, att.address, att.prefix));
    NM_TRY(s.step("inner link up"));
    NM_TRY(inside->set_link(*inner, o.inner_link, true, 0));
    const Ipv4 gateway = s.pool.gateway();
    for (const Cidr& net : {c.networks.container_network, c.networks.service_network}) {
        NM_TRY(s.step("namespace route"));
        NM_TRY(inside->add_route(net, *inner, gateway));
    }
    if (c.namespace_default_route) {
        NM_TRY(s.step("namespace default route"));
        if (auto r = inside->add_route(Cidr{Ipv4{0}, 0}, *inner, gateway); !r) {
            if (r.error().code != Errc::exists) return tl::unexpected(r.error());
            NM_LOG(debug, "env") << att.host_link << ": namespace keeps its own default route";
        }
    }
    if (att.address_v6) NM_TRY(wire_ipv6(s, *inside, *inner, att));

    if (!o.ports.empty()) {
        NM_TRY(s.step("port mappings"));
        NM_TRY(s.firewall->add_port_mappings(att.address, att.address_v6, o.ports));
        att.ports = o.ports;
        undo.push([&s, ip = att.address, ip6 = att.address_v6, ports = o.ports] {
            (void)s.firewall->remove_port_mappings(ip, ip6, ports);
        });
    }
    return {};
}

// Removes the attachment's addresses inside its named namespace.
Result<void> release_namespace_address(const Attachment& att) {
    auto ns = open_named_netns(att.netns);
    if (!ns) return tl::unexpected(ns.error());
    auto inside = RouteSocket::open_in(ns->get());
    if (!inside) return tl::unexpected(inside.error());
    auto inner = inside->ifindex(att.inner_link);
    if (!inner) return tl::unexpected(inner.error());
    NM_TRY(inside->delete_address(*inner, att.inner_link, att.address, att.prefix));
    if (att.address_v6)
        NM_TRY(inside->delete_address(*inner, att.inner_link, *att.address_v6, att.prefix_v6));
    return {};
}

}  // namespace

std::string NodeNetwork::Impl::next_host_link() {
    for (unsigned tries = 0; tries < link_numbers; ++tries) {
        std::string name = config.prefix + "v" + std::to_string(next_link);
        next_link = (next_link + 1) % link_numbers;
        if (!attachments.contains(name)) return name;
    }
    return config.prefix + "v" + std::to_string(next_link);  // all taken: the kernel will say so
}

Result<Attachment> NodeNetwork::attach_new_namespace(const std::string& name,
                                                     const AttachOptions& options) {
    return impl_->attach_named(impl_->config.prefix + name, options, {});
}

Result<Attachment> NodeNetwork::Impl::attach_named(const std::string& netns,
                                                   const AttachOptions& options,
                                                   const FinishInside& finish) {
    Impl& s = *this;
    if (s.torn_down) return fail(Errc::conflict, "node network is torn down");
    NM_TRY(check_request(s, options));
    if (netns.empty() || netns.size() > 255 || netns.find('/') != std::string::npos ||
        netns == "." || netns == "..")
        return fail(Errc::invalid_argument, "invalid namespace name \"" + netns + "\"");
    UndoStack undo;
    Attachment att;
    att.netns = netns;
    NM_TRY(take_addresses(s, options, att, undo));

    NM_TRY(s.step("create namespace"));
    auto ns = create_named_netns(att.netns);
    if (!ns) return tl::unexpected(ns.error());
    att.netns_inode = netns_inode(ns->get());
    undo.push([netns = att.netns] { (void)delete_named_netns(netns); });

    NM_TRY(wire_namespace(s, ns->get(), options, att, undo));
    if (finish) NM_TRY(finish(ns->get(), att));  // undone with the namespace
    undo.commit();
    s.attachments.emplace(att.host_link, att);
    NM_LOG(debug, "env") << "attached namespace " << att.netns << " " << att.address.to_string()
                         << (att.address_v6 ? " " + att.address_v6->to_string() : std::string())
                         << " via " << att.host_link;
    return att;
}

Result<Attachment> NodeNetwork::attach_pid(int pid, const AttachOptions& options) {
    Impl& s = *impl_;
    if (s.torn_down) return fail(Errc::conflict, "node network is torn down");
    NM_TRY(check_request(s, options));
    UndoStack undo;
    Attachment att;
    att.pid = pid;
    NM_TRY(s.step("open process namespace"));
    auto ns = open_pid_netns(pid);
    if (!ns) return tl::unexpected(ns.error());
    att.netns_inode = netns_inode(ns->get());
    NM_TRY(take_addresses(s, options, att, undo));

    NM_TRY(wire_namespace(s, ns->get(), options, att, undo));
    undo.commit();
    s.attachments.emplace(att.host_link, att);
    NM_LOG(debug, "env") << "attached process " << pid << " " << att.address.to_string() << " via "
                         << att.host_link;
    return att;
}

Result<void> NodeNetwork::detach(const std::string& host_link) {
    Impl& s = *impl_;
    auto it = s.attachments.find(host_link);
    if (it == s.attachments.end())
        return fail(Errc::not_found, "no namespace is attached through \"" + host_link + "\"");
    Attachment att = std::move(it->second);
    s.attachments.erase(it);

    // Everything is attempted; the first failure is reported, the rest logged.
    std::optional<Error> first;
    auto note = [&](Result<void> r) {
        if (r || r.error().code == Errc::not_found) return;
        if (!first)
            first = r.error();
        else
            NM_LOG(warn, "env") << "detach " << host_link << ": " << r.error().message;
    };
    if (!att.ports.empty() && s.firewall)
        note(s.firewall->remove_port_mappings(att.address, att.address_v6, att.ports));
    if (att.netns.empty()) {
        note(s.host.delete_link(att.host_link));  // the namespace's end goes with it
    } else if (netns_has_process(att.netns_inode)) {
        // A process keeps the namespace, and with it the pair, alive after the unmount: the
        // host end goes now (the RCU wait is paid only here).
        note(release_namespace_address(att));
        note(s.host.delete_link(att.host_link));
        note(delete_named_netns(att.netns));
    } else {
        // Deleting or moving a link waits for RCU (~30 ms here), so the pair is left to the
        // kernel, which destroys it with the namespace, batched, moments after the unmount.
        // The address goes first, so nothing answers for it even if someone keeps the
        // namespace open, and the pool may hand it out again at once.
        note(release_namespace_address(att));
        note(delete_named_netns(att.netns));
    }
    s.pool.release(att.address);
    if (att.address_v6 && s.pool6) s.pool6->release(*att.address_v6);
    NM_LOG(debug, "env") << "detached " << host_link << " (" << att.address.to_string() << ")";
    if (first) return tl::unexpected(*first);
    return {};
}

}  // namespace nm
