// A unikernel's namespace (protocol.md, /unikernel/deploy): attached like any namespace, and
// inside it the guest side the VM plugs into: virbr0 with tap0, and NAT between the namespace
// address and the guest's fixed 192.168.1.2.
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

#include "core/log.hpp"
#include "env/firewall.hpp"
#include "env/netns.hpp"
#include "env/node_network.hpp"
#include "env/node_network_impl.hpp"
#include "env/sysctl.hpp"

namespace nm {

namespace {

constexpr const char* guest_bridge = "virbr0";
constexpr const char* guest_tap = "tap0";
const Ipv4 guest_gateway{0xc0a80101};  // 192.168.1.1/30, on virbr0
const Ipv4 guest_address{0xc0a80102};  // 192.168.1.2, the VM
constexpr uint8_t guest_prefix = 30;

// A persistent tap (outlives this call; the VM's hypervisor opens it by name later).
Result<void> create_persistent_tap(const std::string& name) {
    const int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) return fail_errno("open /dev/net/tun", errno);
    ifreq request{};
    std::memcpy(request.ifr_name, name.data(), name.size());
    request.ifr_flags = IFF_TAP | IFF_NO_PI;
    Result<void> r;
    if (::ioctl(fd, TUNSETIFF, &request) < 0)
        r = fail_errno("TUNSETIFF " + name, errno);
    else if (::ioctl(fd, TUNSETPERSIST, 1) < 0)
        r = fail_errno("TUNSETPERSIST " + name, errno);
    ::close(fd);
    return r;
}

// The namespace's NAT: what leaves the veth comes from the namespace address, what arrives on
// it goes to the guest.
std::string nat_script(const std::string& table, const Attachment& att) {
    std::ostringstream s;
    s << "table ip " << table << " {\n"
      << "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n"
      << "    iifname \"" << att.inner_link << "\" dnat to " << guest_address.to_string()
      << "\n  }\n"
      << "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n"
      << "    oifname \"" << att.inner_link << "\" snat to " << att.address.to_string()
      << "\n  }\n}\n";
    return s.str();
}

// Runs fn on a thread inside the namespace and returns its result.
Result<void> inside_netns(int netns_fd, const std::function<Result<void>()>& fn) {
    Result<void> result;
    NM_TRY(run_in_netns(netns_fd, [&] { result = fn(); }));
    return result;
}

}  // namespace

Result<Attachment> NodeNetwork::attach_unikernel(const std::string& netns,
                                                 const AttachOptions& options) {
    Impl& s = *impl_;
    const std::string table = table_name_for(s.config.prefix);
    auto finish = [&s, &table](int netns_fd, const Attachment& att) -> Result<void> {
        NM_TRY(s.step("open netlink socket in unikernel namespace"));
        auto inside = RouteSocket::open_in(netns_fd);
        if (!inside) return tl::unexpected(inside.error());
        NM_TRY(s.step("guest bridge"));
        NM_TRY(inside->add_bridge(guest_bridge, 0));
        auto bridge = inside->ifindex(guest_bridge);
        if (!bridge) return tl::unexpected(bridge.error());
        NM_TRY(s.step("guest bridge address"));
        NM_TRY(inside->add_address(*bridge, guest_bridge, guest_gateway, guest_prefix));
        NM_TRY(s.step("guest tap"));
        NM_TRY(inside_netns(netns_fd, [] { return create_persistent_tap(guest_tap); }));
        auto tap = inside->ifindex(guest_tap);
        if (!tap) return tl::unexpected(tap.error());
        NM_TRY(s.step("guest tap on bridge"));
        NM_TRY(inside->set_master(*tap, guest_tap, *bridge));
        NM_TRY(s.step("guest tap up"));
        NM_TRY(inside->set_link(*tap, guest_tap, true, 0));
        NM_TRY(s.step("unikernel forwarding and NAT"));
        return inside_netns(netns_fd, [&]() -> Result<void> {
            NM_TRY(write_sysctl("net.ipv4.ip_forward", "1"));
            auto r = run_nft(nat_script(table, att));
            if (!r) return tl::unexpected(r.error());
            return {};
        });
    };
    auto att = s.attach_named(netns, options, finish);
    if (att)
        NM_LOG(debug, "env") << "unikernel namespace " << netns << ": " << guest_bridge << " "
                             << guest_gateway.to_string() << "/" << int(guest_prefix) << " with "
                             << guest_tap << ", guest " << guest_address.to_string();
    return att;
}

}  // namespace nm
