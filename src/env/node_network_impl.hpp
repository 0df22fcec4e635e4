#pragma once
// NodeNetwork's state, shared by the files that implement it (not a public header).
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "env/address_pool.hpp"
#include "env/firewall.hpp"
#include "env/node_network.hpp"
#include "env/route_socket.hpp"

namespace nm {

struct NodeNetwork::Impl {
    NodeNetworkConfig config;
    RouteSocket host;  // the node's namespace
    int bridge_ifindex = 0;
    AddressPool pool;
    std::optional<AddressPool6> pool6;  // when the node has an IPv6 subnet
    std::optional<Firewall> firewall;
    std::optional<std::string> saved_ip_forward;    // restored by teardown
    std::optional<std::string> saved_ipv6_forward;  // net.ipv6.conf.all.forwarding, likewise
    bool forward_accepts = false;  // in iptables' FORWARD chain, tagged with the table name

    struct Tun {
        std::string name;
        int ifindex = 0;
        Ipv4 ip;
        bool added_address = false;
        bool added_address_v6 = false;
    };
    std::optional<Tun> tun;

    std::map<std::string, Attachment> attachments;  // by host_link
    unsigned next_link = 0;
    int fail_at = -1;
    bool torn_down = false;

    Impl(NodeNetworkConfig cfg, RouteSocket sock)
        : config(std::move(cfg)),
          host(std::move(sock)),
          pool(config.subnet, {config.tun_ip}),
          fail_at(config.fail_at_step) {
        if (config.subnet_v6) pool6.emplace(*config.subnet_v6, std::vector<Ipv6>{config.tun_ipv6});
    }

    // Every step passes here first, so a test can make any one of them fail.
    Result<void> step(std::string_view what);
    // More set-up inside a freshly attached namespace (behind the fd); whatever it leaves on
    // failure goes with the namespace.
    using FinishInside = std::function<Result<void>(int netns_fd, const Attachment&)>;
    // Creates /run/netns/<netns> and attaches it (attach_new_namespace without the prefix).
    Result<Attachment> attach_named(const std::string& netns, const AttachOptions& options,
                                    const FinishInside& finish);
    std::string next_host_link();
    // Takes an earlier run's living attachment back (env/adopt.cpp): its addresses, the bridge
    // as its veth's master, its port mappings.
    Result<void> adopt(const Attachment& att);
    void remove_tun_config();
    std::vector<Cidr> tun_routes() const;
    std::vector<Cidr6> tun_routes_v6() const;  // none without IPv6
};

// Checks the config's names: prefix, bridge, table.
Result<void> validate(const NodeNetworkConfig& config);
std::string table_name_for(const std::string& prefix);

}  // namespace nm
