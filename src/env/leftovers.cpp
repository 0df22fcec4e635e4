// Startup cleanup: what an agent with the same prefix left behind when it died.
#include <algorithm>
#include <cctype>

#include "core/log.hpp"
#include "env/firewall.hpp"
#include "env/forward_accepts.hpp"
#include "env/netns.hpp"
#include "env/node_network.hpp"
#include "env/node_network_impl.hpp"
#include "env/route_socket.hpp"

namespace nm {

namespace {

// "<prefix>v<digits>": a host veth end this agent names.
bool is_our_link(const std::string& prefix, const std::string& name) {
    std::string head = prefix + "v";
    if (name.size() <= head.size() || name.compare(0, head.size(), head) != 0) return false;
    return std::all_of(name.begin() + static_cast<long>(head.size()), name.end(),
                       [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

}  // namespace

Result<std::vector<std::string>> NodeNetwork::remove_leftovers(const NodeNetworkConfig& config) {
    if (auto r = validate(config); !r) return tl::unexpected(r.error());
    std::vector<std::string> removed;
    auto sock = RouteSocket::open();
    if (!sock) return tl::unexpected(sock.error());

    auto links = sock->links();
    if (!links) return tl::unexpected(links.error());
    for (const LinkInfo& link : *links) {
        bool ours = (link.kind == "veth" && is_our_link(config.prefix, link.name)) ||
                    (link.kind == "bridge" && link.name == config.bridge);
        if (!ours) continue;
        auto r = sock->delete_link(link.name);
        if (!r && r.error().code != Errc::not_found) return tl::unexpected(r.error());
        removed.push_back(link.kind + " " + link.name);
    }
    const std::string table = table_name_for(config.prefix);
    for (const std::string& name : list_named_netns()) {
        if (name.compare(0, config.prefix.size(), config.prefix) != 0) continue;
        auto r = delete_named_netns(name);
        if (!r && r.error().code != Errc::not_found) return tl::unexpected(r.error());
        removed.push_back("namespace " + name);
    }
    auto had = Firewall::remove_table(table);
    if (!had) return tl::unexpected(had.error());
    if (*had) removed.push_back("nftables table ip " + table);
    auto accepts = remove_forward_accepts(table);
    if (!accepts) return tl::unexpected(accepts.error());
    if (*accepts)
        removed.push_back(std::to_string(*accepts) + " rules tagged " + table +
                          " in iptables' FORWARD chain");

    for (const std::string& what : removed)
        NM_LOG(info, "env") << "removed leftover of an earlier run: " << what;
    return removed;
}

}  // namespace nm
