#pragma once
// A NETLINK_ROUTE socket (libnl-3 route API) bound to one network namespace: the namespace of
// the thread that opened it. Every failure carries the kernel's reason and the object's name:
// "netlink: File exists (e1v3)", plus the kernel's extended-ack text when it gives one.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "core/error.hpp"

namespace nm {

struct LinkInfo {
    int ifindex = 0;
    std::string name;
    std::string kind;  // "veth", "bridge", "tun", ... ; empty for plain devices
    unsigned mtu = 0;
    bool up = false;  // administratively (IFF_UP)
};

struct VethSpec {
    std::string name;        // this end, in the socket's namespace
    std::string peer_name;   // the other end
    int peer_netns_fd = -1;  // create the peer directly in this namespace; -1: here
    int master_ifindex = 0;  // enslave this end (to the bridge); 0: none
    unsigned mtu = 0;        // both ends; 0: kernel default
    bool up = true;          // this end; bring the peer up afterwards, in its namespace
};

class RouteSocket {
  public:
    // Opens a socket in the calling thread's current network namespace.
    static Result<RouteSocket> open();
    // Opens a socket in the namespace behind `netns_fd` (the thread returns to its own).
    static Result<RouteSocket> open_in(int netns_fd);

    RouteSocket(RouteSocket&&) noexcept;
    RouteSocket& operator=(RouteSocket&&) noexcept;
    ~RouteSocket();

    // not_found when no such link.
    Result<int> ifindex(const std::string& name);
    Result<LinkInfo> link(const std::string& name);
    Result<std::vector<LinkInfo>> links();

    Result<void> add_bridge(const std::string& name, unsigned mtu);
    Result<void> add_veth(const VethSpec& spec);
    // Brings a link up and/or sets its MTU (0: leave it).
    Result<void> set_link(int ifindex, const std::string& name, bool up, unsigned mtu);
    // Takes a link down.
    Result<void> set_link_down(int ifindex, const std::string& name);
    // not_found when it does not exist.
    Result<void> delete_link(const std::string& name);
    // Moves a link into the namespace behind netns_fd.
    Result<void> move_link(const std::string& name, int netns_fd);
    // Enslaves a link to a bridge.
    Result<void> set_master(int ifindex, const std::string& name, int master_ifindex);

    Result<void> add_address(int ifindex, const std::string& link, Ipv4 ip, uint8_t prefix);
    Result<void> delete_address(int ifindex, const std::string& link, Ipv4 ip, uint8_t prefix);
    // IPv6 addresses are added without duplicate address detection (usable at once: the agent
    // hands out each address once). prefix_route false: no route for the prefix (the caller
    // adds its own), as `ip addr add ... noprefixroute`.
    Result<void> add_address(int ifindex, const std::string& link, const Ipv6& ip, uint8_t prefix,
                             bool prefix_route = true);
    Result<void> delete_address(int ifindex, const std::string& link, const Ipv6& ip,
                                uint8_t prefix);

    // A route in the main table: `dst` to `ifindex` directly, or via `gateway`.
    // replace: overwrite an existing route to dst instead of failing with "File exists".
    Result<void> add_route(Cidr dst, int ifindex, std::optional<Ipv4> gateway,
                           bool replace = false);
    Result<void> delete_route(Cidr dst, int ifindex, std::optional<Ipv4> gateway);
    Result<void> add_route(const Cidr6& dst, int ifindex, std::optional<Ipv6> gateway,
                           bool replace = false);
    Result<void> delete_route(const Cidr6& dst, int ifindex, std::optional<Ipv6> gateway);
    // The link of the IPv4 default route in the main table (the lowest metric's); nullopt when
    // there is none.
    Result<std::optional<std::string>> default_route_link();

    struct State;

  private:
    explicit RouteSocket(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
};

}  // namespace nm
