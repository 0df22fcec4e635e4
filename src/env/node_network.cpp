// Node setup, TUN configuration and teardown. Attach/detach: attach.cpp; leftovers: leftovers.cpp.
#include "env/node_network.hpp"

#include "core/log.hpp"
#include "env/forward_accepts.hpp"
#include "env/node_network_impl.hpp"
#include "env/sysctl.hpp"
#include "env/undo_stack.hpp"

namespace nm {

namespace {

constexpr const char* ipv6_forwarding_key = "net.ipv6.conf.all.forwarding";

bool valid_ifname(const std::string& name) {
    if (name.empty() || name.size() > 15) return false;
    for (char c : name)
        if (c == '/' || c == ':' || c == ' ' || c == '\t' || c == '\n') return false;
    return true;
}

}  // namespace

std::string table_name_for(const std::string& prefix) {
    std::string name = "netmanager_" + prefix;
    for (char& c : name)
        if (c == '-') c = '_';
    return name;
}

Result<void> validate(const NodeNetworkConfig& c) {
    if (c.prefix.empty() || c.prefix.size() > 9)
        return fail(Errc::invalid_argument,
                    "namespace prefix \"" + c.prefix + "\" must have 1 to 9 characters");
    for (char ch : c.prefix)
        if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_')
            return fail(
                Errc::invalid_argument,
                "namespace prefix \"" + c.prefix + "\" may hold only letters, digits, '-' and '_'");
    if (!valid_ifname(c.bridge))
        return fail(Errc::invalid_argument,
                    "bridge name \"" + c.bridge + "\" is not a valid interface name");
    if (!valid_ifname(c.tun_name))
        return fail(Errc::invalid_argument,
                    "TUN name \"" + c.tun_name + "\" is not a valid interface name");
    if (!c.uplink.empty() && !valid_ifname(c.uplink))
        return fail(Errc::invalid_argument,
                    "uplink \"" + c.uplink + "\" is not a valid interface name");
    if (c.subnet.prefix < 8 || c.subnet.prefix > 30)
        return fail(Errc::invalid_argument,
                    "node subnet " + c.subnet.to_string() + " must be /8 to /30");
    if (c.subnet_v6 && (c.subnet_v6->prefix < 64 || c.subnet_v6->prefix > 126))
        return fail(Errc::invalid_argument,
                    "node IPv6 subnet " + c.subnet_v6->to_string() + " must be /64 to /126");
    if (c.mtu < 576 || c.mtu > 65535)
        return fail(Errc::invalid_argument, "MTU " + std::to_string(c.mtu) + " must be 576..65535");
    return {};
}

NodeNetworkConfig NodeNetworkConfig::from(const Config& config, Cidr subnet,
                                          std::optional<Cidr6> subnet_v6) {
    NodeNetworkConfig c;
    if (!config.ns_prefix.empty()) c.prefix = config.ns_prefix;
    c.bridge = config.bridge;
    c.subnet = subnet;
    c.subnet_v6 = subnet_v6;
    c.networks = config.networks;
    c.tun_ipv6 = config.tun_ipv6;
    c.tun_name = config.tun_device;
    c.tun_ip = config.tunnel_ip;
    c.mtu = config.veth_mtu();
    c.uplink = config.default_interface;
    c.detect_uplink = config.default_interface.empty();
    c.tunnel_port = config.tunnel_port;
    return c;
}

Result<void> NodeNetwork::Impl::step(std::string_view what) {
    if (fail_at < 0) return {};
    if (fail_at-- > 0) return {};
    return fail(Errc::system, "injected failure at " + std::string(what));
}

NodeNetwork::NodeNetwork(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NodeNetwork::NodeNetwork(NodeNetwork&&) noexcept = default;

NodeNetwork& NodeNetwork::operator=(NodeNetwork&& other) noexcept {
    if (this != &other) {
        teardown();
        impl_ = std::move(other.impl_);
    }
    return *this;
}

NodeNetwork::~NodeNetwork() {
    teardown();
}

Result<NodeNetwork> NodeNetwork::setup(const NodeNetworkConfig& config, const EarlierRun& earlier) {
    NM_TRY(validate(config));
    const std::vector<Attachment> kept = alive_attachments(config, earlier.attachments);
    auto removed = remove_leftovers(config, kept);
    if (!removed) return tl::unexpected(removed.error());

    auto sock = RouteSocket::open();
    if (!sock) return tl::unexpected(sock.error());
    auto impl = std::make_unique<Impl>(config, std::move(*sock));
    Impl& s = *impl;
    UndoStack undo;

    if (config.uplink.empty() && config.detect_uplink) {
        NM_TRY(s.step("default route"));
        auto uplink = s.host.default_route_link();
        if (!uplink) return tl::unexpected(uplink.error());
        if (*uplink) s.config.uplink = **uplink;
        NM_LOG(info, "env") << (*uplink ? "uplink " + **uplink + ": the link of the default route"
                                        : std::string("no default route: no masquerade"));
    }

    const std::string& br = config.bridge;
    NM_TRY(s.step("create bridge"));
    // Adopted namespaces keep the bridge their veths are on (and with it their traffic).
    if (auto r = s.host.add_bridge(br, config.mtu);
        !r && (kept.empty() || r.error().code != Errc::exists))
        return tl::unexpected(r.error());
    undo.push([&s, br] { (void)s.host.delete_link(br); });
    auto index = s.host.ifindex(br);
    if (!index) return tl::unexpected(index.error());
    s.bridge_ifindex = *index;

    NM_TRY(s.step("bridge address"));
    if (auto r =
            s.host.add_address(s.bridge_ifindex, br, config.subnet.host(1), config.subnet.prefix);
        !r && (kept.empty() || r.error().code != Errc::exists))
        return tl::unexpected(r.error());
    if (!kept.empty()) NM_TRY(s.host.set_link(s.bridge_ifindex, br, true, config.mtu));

    NM_TRY(s.step("ip_forward"));
    auto forward = earlier.ip_forward ? Result<std::string>(*earlier.ip_forward)
                                      : read_sysctl("net.ipv4.ip_forward");
    if (!forward) return tl::unexpected(forward.error());
    NM_TRY(write_sysctl("net.ipv4.ip_forward", "1"));
    s.saved_ip_forward = *forward;
    undo.push([&s] {
        (void)write_sysctl("net.ipv4.ip_forward", *s.saved_ip_forward);
        s.saved_ip_forward.reset();
    });

    NM_TRY(s.step("bridge rp_filter"));
    NM_TRY(write_sysctl(rp_filter_key(br), "0"));

    if (config.subnet_v6) {
        // IPv6 has no rp_filter: a reverse path check there would be a firewall rule.
        NM_TRY(s.step("bridge IPv6 address"));
        if (auto r = s.host.add_address(s.bridge_ifindex, br, s.pool6->gateway(),
                                        config.subnet_v6->prefix);
            !r && (kept.empty() || r.error().code != Errc::exists))
            return tl::unexpected(r.error());
        NM_TRY(s.step("IPv6 forwarding"));
        auto forward6 = earlier.ipv6_forward ? Result<std::string>(*earlier.ipv6_forward)
                                             : read_sysctl(ipv6_forwarding_key);
        if (!forward6) return tl::unexpected(forward6.error());
        NM_TRY(write_sysctl(ipv6_forwarding_key, "1"));
        s.saved_ipv6_forward = *forward6;
        undo.push([&s] {
            (void)write_sysctl(ipv6_forwarding_key, *s.saved_ipv6_forward);
            s.saved_ipv6_forward.reset();
        });
    }

    NM_TRY(s.step("nftables table"));
    const std::string table = table_name_for(config.prefix);
    auto fw = Firewall::create(
        {table, br, config.tun_name, s.config.uplink, config.subnet, config.subnet_v6});
    if (!fw) return tl::unexpected(fw.error());
    s.firewall.emplace(std::move(*fw));
    undo.push([&s] {
        (void)s.firewall->destroy();
        s.firewall.reset();
    });

    NM_TRY(s.step("iptables FORWARD accepts"));
    auto accepts = insert_forward_accepts(br, table);
    if (!accepts) return tl::unexpected(accepts.error());
    s.forward_accepts = *accepts;
    if (legacy_filter_table_present())
        NM_LOG(warn, "env")
            << "iptables-legacy's filter table is in use here: a DROP policy of its "
               "FORWARD chain also drops bridge traffic; use iptables-nft, or "
               "accept the bridge there (iptables-legacy -I FORWARD -i "
            << br << " -j ACCEPT, and -o)";

    for (const Attachment& att : kept) NM_TRY(s.adopt(att));

    undo.commit();
    NM_LOG(info, "env") << "node network up: bridge " << br << " "
                        << config.subnet.host(1).to_string() << "/" << int(config.subnet.prefix)
                        << (config.subnet_v6 ? " and " + s.pool6->gateway().to_string() + "/" +
                                                   std::to_string(config.subnet_v6->prefix)
                                             : std::string())
                        << " mtu " << config.mtu << ", table " << s.firewall->table()
                        << (s.config.uplink.empty() ? "" : ", masquerade via ") << s.config.uplink
                        << (s.forward_accepts ? ", bridge accepted in iptables' FORWARD" : "");
    return NodeNetwork(std::move(impl));
}

std::vector<Cidr> NodeNetwork::Impl::tun_routes() const {
    // The reference's route "10.30.0.0/12" is, as the kernel reads it, 10.16.0.0/12: the
    // container network, which holds the ServiceIPs' 10.30.0.0/16 in the default plan.
    std::vector<Cidr> routes{config.networks.service_network};
    if (config.networks.container_network != config.networks.service_network)
        routes.push_back(config.networks.container_network);
    return routes;
}

std::vector<Cidr6> NodeNetwork::Impl::tun_routes_v6() const {
    if (!config.subnet_v6) return {};
    std::vector<Cidr6> routes{config.networks.service_network_v6};
    if (config.networks.container_network_v6 != config.networks.service_network_v6)
        routes.push_back(config.networks.container_network_v6);
    return routes;
}

void NodeNetwork::Impl::remove_tun_config() {
    if (!tun) return;
    for (const Cidr& net : tun_routes()) (void)host.delete_route(net, tun->ifindex, std::nullopt);
    for (const Cidr6& net : tun_routes_v6())
        (void)host.delete_route(net, tun->ifindex, std::nullopt);
    if (tun->added_address) (void)host.delete_address(tun->ifindex, tun->name, tun->ip, 32);
    if (tun->added_address_v6)
        (void)host.delete_address(tun->ifindex, tun->name, config.tun_ipv6, tunnel_ipv6_prefix);
    tun.reset();
}

Result<void> NodeNetwork::configure_tun(const std::string& name, Ipv4 ip, unsigned mtu) {
    Impl& s = *impl_;
    if (s.torn_down) return fail(Errc::conflict, "node network is torn down");
    if (!valid_ifname(name))
        return fail(Errc::invalid_argument,
                    "TUN name \"" + name + "\" is not a valid interface name");
    if (ip == s.pool.gateway() || s.pool.taken(ip))
        return fail(Errc::conflict, "TUN address " + ip.to_string() +
                                        " is already used by the bridge or a namespace");
    NM_TRY(s.step("find TUN"));
    auto before = s.host.link(name);
    if (!before)
        return fail(Errc::not_found,
                    before.error().message + ": the tunnel must create the TUN device first");
    s.remove_tun_config();  // a repeated call replaces the earlier configuration

    UndoStack undo;
    Impl::Tun tun{name, before->ifindex, ip, false};
    NM_TRY(s.step("TUN up"));
    NM_TRY(s.host.set_link(tun.ifindex, name, true, mtu));
    undo.push([&s, was = *before] {
        if (!was.up) (void)s.host.set_link_down(was.ifindex, was.name);
        (void)s.host.set_link(was.ifindex, was.name, false, was.mtu);
    });
    NM_TRY(s.step("TUN address"));
    if (auto r = s.host.add_address(tun.ifindex, name, ip, 32); r) {
        tun.added_address = true;
        undo.push([&s, tun] { (void)s.host.delete_address(tun.ifindex, tun.name, tun.ip, 32); });
    } else if (r.error().code != Errc::exists) {
        return tl::unexpected(r.error());
    }
    NM_TRY(s.step("TUN rp_filter"));
    NM_TRY(write_sysctl(rp_filter_key(name), "0"));
    const std::vector<Cidr> routes = s.tun_routes();
    for (const Cidr& net : routes) {
        NM_TRY(s.step("TUN route"));
        NM_TRY(s.host.add_route(net, tun.ifindex, std::nullopt, /*replace=*/true));
        undo.push([&s, net, tun] { (void)s.host.delete_route(net, tun.ifindex, std::nullopt); });
    }
    if (s.config.subnet_v6) {
        const Ipv6& ip6 = s.config.tun_ipv6;
        NM_TRY(s.step("TUN IPv6 address"));
        if (auto r = s.host.add_address(tun.ifindex, name, ip6, tunnel_ipv6_prefix,
                                        /*prefix_route=*/false);
            r) {
            tun.added_address_v6 = true;
            undo.push([&s, tun, ip6] {
                (void)s.host.delete_address(tun.ifindex, tun.name, ip6, tunnel_ipv6_prefix);
            });
        } else if (r.error().code != Errc::exists) {
            return tl::unexpected(r.error());
        }
        for (const Cidr6& net : s.tun_routes_v6()) {
            NM_TRY(s.step("TUN IPv6 route"));
            NM_TRY(s.host.add_route(net, tun.ifindex, std::nullopt, /*replace=*/true));
            undo.push(
                [&s, net, tun] { (void)s.host.delete_route(net, tun.ifindex, std::nullopt); });
        }
    }
    if (s.pool.subnet().contains(ip)) NM_TRY(s.pool.reserve_permanently(ip));
    undo.commit();
    s.tun = tun;
    NM_LOG(info, "env") << "TUN " << name << " " << ip.to_string() << "/32 mtu " << mtu
                        << ", routes " << routes.front().to_string()
                        << (routes.size() > 1 ? " and " + routes.back().to_string() : "")
                        << " to it";
    if (s.config.subnet_v6)
        NM_LOG(info, "env") << "TUN " << name << " " << s.config.tun_ipv6.to_string() << "/"
                            << int(tunnel_ipv6_prefix) << ", routes "
                            << s.config.networks.service_network_v6.to_string() << " and "
                            << s.config.networks.container_network_v6.to_string() << " to it";
    return {};
}

void NodeNetwork::teardown() {
    if (!impl_ || impl_->torn_down) return;
    Impl& s = *impl_;
    std::vector<std::string> links;
    for (const auto& [link, att] : s.attachments) links.push_back(link);
    for (const std::string& link : links)
        if (auto r = detach(link); !r)
            NM_LOG(warn, "env") << "teardown: detach " << link << ": " << r.error().message;
    s.remove_tun_config();
    if (s.forward_accepts) {
        if (auto r = remove_forward_accepts(table_name_for(s.config.prefix)); !r)
            NM_LOG(warn, "env") << "teardown: " << r.error().message;
        s.forward_accepts = false;
    }
    if (s.firewall) {
        if (auto r = s.firewall->destroy(); !r)
            NM_LOG(warn, "env") << "teardown: " << r.error().message;
        s.firewall.reset();
    }
    if (auto r = s.host.delete_link(s.config.bridge); !r)
        NM_LOG(warn, "env") << "teardown: bridge: " << r.error().message;
    if (s.saved_ip_forward) {
        if (auto r = write_sysctl("net.ipv4.ip_forward", *s.saved_ip_forward); !r)
            NM_LOG(warn, "env") << "teardown: " << r.error().message;
        s.saved_ip_forward.reset();
    }
    if (s.saved_ipv6_forward) {
        if (auto r = write_sysctl(ipv6_forwarding_key, *s.saved_ipv6_forward); !r)
            NM_LOG(warn, "env") << "teardown: " << r.error().message;
        s.saved_ipv6_forward.reset();
    }
    s.torn_down = true;
    NM_LOG(info, "env") << "node network removed (bridge " << s.config.bridge << ", table "
                        << table_name_for(s.config.prefix) << ")";
}

std::optional<std::string> NodeNetwork::original_ip_forward() const {
    return impl_->saved_ip_forward;
}
std::optional<std::string> NodeNetwork::original_ipv6_forward() const {
    return impl_->saved_ipv6_forward;
}

const NodeNetworkConfig& NodeNetwork::config() const {
    return impl_->config;
}
const AddressPool& NodeNetwork::pool() const {
    return impl_->pool;
}
std::string NodeNetwork::table_name() const {
    return table_name_for(impl_->config.prefix);
}
void NodeNetwork::fail_at_step_for_testing(int n) {
    impl_->fail_at = n;
}

std::vector<Attachment> NodeNetwork::attachments() const {
    std::vector<Attachment> out;
    for (const auto& [link, att] : impl_->attachments) out.push_back(att);
    return out;
}

}  // namespace nm
