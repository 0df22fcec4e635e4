// Startup cleanup: what an agent with the same prefix left behind when it died.
#include <algorithm>
#include <cctype>
#include <set>

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

// "<job>.instance.<n>": the name a unikernel's namespace has (no prefix: the node engine
// finds it by that name).
bool is_unikernel_name(const std::string& name) {
    const std::string mark = ".instance.";
    auto at = name.rfind(mark);
    if (at == std::string::npos || at == 0 || at + mark.size() == name.size()) return false;
    return std::all_of(name.begin() + static_cast<long>(at + mark.size()), name.end(),
                       [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// True when namespace `name` holds nftables table `ip <table>`: this agent's unikernel.
Result<bool> holds_table(const std::string& name, const std::string& table) {
    auto ns = open_named_netns(name);
    if (!ns) return tl::unexpected(ns.error());
    Result<bool> found = false;
    auto ran = run_in_netns(ns->get(), [&] {
        auto listed = run_nft("list tables ip");
        if (!listed)
            found = tl::unexpected(listed.error());
        else
            found = listed->find("table ip " + table + "\n") != std::string::npos;
    });
    if (!ran) return tl::unexpected(ran.error());
    return found;
}

}  // namespace

Result<std::vector<std::string>> NodeNetwork::remove_leftovers(
    const NodeNetworkConfig& config, const std::vector<Attachment>& keep) {
    if (auto r = validate(config); !r) return tl::unexpected(r.error());
    std::set<std::string> kept;  // host veths and namespaces
    for (const Attachment& att : keep) {
        kept.insert(att.host_link);
        if (!att.netns.empty()) kept.insert(att.netns);
    }
    std::vector<std::string> removed;
    auto sock = RouteSocket::open();
    if (!sock) return tl::unexpected(sock.error());

    auto links = sock->links();
    if (!links) return tl::unexpected(links.error());
    for (const LinkInfo& link : *links) {
        bool ours = (link.kind == "veth" && is_our_link(config.prefix, link.name)) ||
                    (link.kind == "bridge" && link.name == config.bridge && keep.empty());
        if (!ours || kept.contains(link.name)) continue;
        auto r = sock->delete_link(link.name);
        if (!r && r.error().code != Errc::not_found) return tl::unexpected(r.error());
        removed.push_back(link.kind + " " + link.name);
    }
    const std::string table = table_name_for(config.prefix);
    for (const std::string& name : list_named_netns()) {
        if (kept.contains(name)) continue;
        if (name.compare(0, config.prefix.size(), config.prefix) != 0) {
            if (!is_unikernel_name(name)) continue;
            // Someone else's namespace may be half made or half removed (no mount yet, or no
            // longer): not ours, and no reason to fail the start.
            auto ours = holds_table(name, table);
            if (!ours)
                NM_LOG(debug, "env")
                    << "leftovers: skipping namespace " << name << ": " << ours.error().message;
            if (!ours || !*ours) continue;
        }
        auto r = delete_named_netns(name);
        if (!r && r.error().code != Errc::not_found) return tl::unexpected(r.error());
        removed.push_back("namespace " + name);
    }
    auto had = Firewall::remove_table(table);
    if (!had) return tl::unexpected(had.error());
    for (const std::string& name : *had) removed.push_back("nftables table " + name);
    auto accepts = remove_forward_accepts(table);
    if (!accepts) return tl::unexpected(accepts.error());
    if (*accepts)
        removed.push_back(std::to_string(*accepts) + " rules tagged " + table +
                          " in iptables' FORWARD chains");

    for (const std::string& what : removed)
        NM_LOG(info, "env") << "removed leftover of an earlier run: " << what;
    return removed;
}

}  // namespace nm
