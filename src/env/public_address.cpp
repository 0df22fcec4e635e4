#include "env/public_address.hpp"

#include <ifaddrs.h>
#include <netinet/in.h>

#include <cerrno>
#include <fstream>
#include <optional>
#include <sstream>

namespace nm {

Result<Ipv4> node_public_address(const std::string& configured) {
    auto ip = Ipv4::parse(configured);
    if (ip && ip->value != 0) return *ip;
    // The interface of the default route, from the kernel's routing table.
    std::ifstream routes("/proc/net/route");
    std::string line, iface;
    std::getline(routes, line);  // header
    while (std::getline(routes, line)) {
        std::istringstream fields(line);
        std::string name, destination;
        fields >> name >> destination;
        if (destination == "00000000") {
            iface = name;
            break;
        }
    }
    if (iface.empty())
        return fail(Errc::unavailable,
                    "no default route to take the node address from; give --node-ip");
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
