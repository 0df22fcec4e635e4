// A start after a crash: which of the earlier run's attachments still carry a workload, and
// taking those back as they are.
#include "core/log.hpp"
#include "env/netns.hpp"
#include "env/node_network.hpp"
#include "env/node_network_impl.hpp"

namespace nm {

namespace {

// Why `att` is not kept, or empty when its workload is alive.
std::string why_not_alive(RouteSocket& host, const Attachment& att) {
    const std::string path =
        att.netns.empty() ? pid_netns_path(att.pid) : named_netns_path(att.netns);
    const uint64_t inode = netns_inode(path);
    if (inode == 0)
        return att.netns.empty() ? "process " + std::to_string(att.pid) + " is gone"
                                 : "namespace " + att.netns + " is gone";
    if (att.netns_inode != 0 && inode != att.netns_inode) return path + " is another namespace now";
    auto link = host.link(att.host_link);
    if (!link || link->kind != "veth") return "host veth " + att.host_link + " is gone";
    if (!att.netns.empty() && !netns_has_process(inode))
        return "no process runs in namespace " + att.netns;
    return {};
}

}  // namespace

std::vector<Attachment> NodeNetwork::alive_attachments(const NodeNetworkConfig& config,
                                                       const std::vector<Attachment>& earlier) {
    std::vector<Attachment> alive;
    if (earlier.empty()) return alive;
    auto host = RouteSocket::open();
    if (!host) {
        NM_LOG(warn, "env") << "adopting nothing of the earlier run: " << host.error().message;
        return alive;
    }
    for (const Attachment& att : earlier) {
        const std::string ours = config.prefix + "v";
        if (att.host_link.compare(0, ours.size(), ours) != 0) {
            NM_LOG(warn, "env") << "not adopting " << att.host_link << ": not a veth of prefix "
                                << config.prefix;
            continue;
        }
        std::string why = config.subnet.contains(att.address)
                              ? why_not_alive(*host, att)
                              : att.address.to_string() + " is outside the node subnet " +
                                    config.subnet.to_string();
        if (why.empty()) {
            alive.push_back(att);
            continue;
        }
        NM_LOG(info, "env") << "not adopting " << att.host_link << " (" << att.address.to_string()
                            << "): " << why;
    }
    return alive;
}

Result<void> NodeNetwork::Impl::adopt(const Attachment& att) {
    const std::string what = "adopting " + att.host_link + ": ";
    if (auto r = pool.reserve(att.address); !r)
        return fail(r.error().code, what + r.error().message);
    if (att.address_v6 && pool6)
        if (auto r = pool6->reserve(*att.address_v6); !r)
            return fail(r.error().code, what + r.error().message);
    auto index = host.ifindex(att.host_link);
    if (!index) return tl::unexpected(index.error());
    NM_TRY(host.set_master(*index, att.host_link, bridge_ifindex));
    if (!att.ports.empty())
        NM_TRY(firewall->add_port_mappings(att.address, att.address_v6, att.ports));
    attachments.emplace(att.host_link, att);
    NM_LOG(info, "env") << "adopted "
                        << (att.netns.empty() ? "process " + std::to_string(att.pid)
                                              : "namespace " + att.netns)
                        << " " << att.address.to_string() << " via " << att.host_link;
    return {};
}

}  // namespace nm
