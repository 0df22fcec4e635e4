#include "env/public_address.hpp"

#include <ifaddrs.h>
#include <netinet/in.h>

#include <cerrno>
#include <optional>

#include "env/route_socket.hpp"

namespace nm {

Result<Ipv4> node_public_address(const std::string& configured) {
    auto ip = Ipv4::parse(configured);
    if (ip && ip->value != 0) return *ip;
    auto routes = RouteSocket::open();
    if (!routes) return tl::unexpected(routes.error());
    auto link = routes->default_route_link();
    if (!link) return tl::unexpected(link.error());
    if (!*link)
        return fail(Errc::unavailable,
                    "no default route to take the node address from; give --node-ip");
    const std::string& iface = **link;
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return fail_errno("getifaddrs", errno);
    std::optional<Ipv4> found;
    for (auto* a = list; a; a = a->ifa_next) {
        if (a->ifa_addr && a->ifa_addr->sa_family == AF_INET && iface == a->ifa_name) {
            found =
                Ipv4::from_network(reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr);
            break;
        }
    }
    freeifaddrs(list);
    if (!found)
        return fail(Errc::unavailable, "default route interface " + iface + " has no IPv4 address");
    return *found;
}

}  // namespace nm
