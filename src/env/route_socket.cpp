#include "env/route_socket.hpp"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "env/netns.hpp"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

namespace nm {

// The socket plus what the kernel said about the last failed request (libnl keeps only its
// own error code, which loses the kernel's errno and extended-ack text).
struct RouteSocket::State {
    nl_sock* sock = nullptr;
    int kernel_errno = 0;
    std::string kernel_message;
    ~State() {
        if (sock) nl_socket_free(sock);
    }
};

namespace {

template <class T, void (*Free)(T*)>
struct Deleter {
    void operator()(T* p) const {
        if (p) Free(p);
    }
};
using LinkPtr = std::unique_ptr<rtnl_link, Deleter<rtnl_link, rtnl_link_put>>;
using AddrPtr = std::unique_ptr<rtnl_addr, Deleter<rtnl_addr, rtnl_addr_put>>;
using RoutePtr = std::unique_ptr<rtnl_route, Deleter<rtnl_route, rtnl_route_put>>;
using NlAddrPtr = std::unique_ptr<nl_addr, Deleter<nl_addr, nl_addr_put>>;
using CachePtr = std::unique_ptr<nl_cache, Deleter<nl_cache, nl_cache_free>>;

// Records the kernel's errno and NLMSGERR_ATTR_MSG; returning NL_STOP keeps libnl's error path.
int on_error(sockaddr_nl*, nlmsgerr* err, void* arg) {
    auto* st = static_cast<RouteSocket::State*>(arg);
    st->kernel_errno = -err->error;
    st->kernel_message.clear();
    auto* hdr = reinterpret_cast<nlmsghdr*>(reinterpret_cast<char*>(err) - NLMSG_HDRLEN);
    if (!(hdr->nlmsg_flags & NLM_F_ACK_TLVS)) return NL_STOP;
    size_t offset = NLMSG_HDRLEN + sizeof(nlmsgerr);
    if (!(hdr->nlmsg_flags & NLM_F_CAPPED)) offset += err->msg.nlmsg_len - NLMSG_HDRLEN;
    offset = NLMSG_ALIGN(offset);
    const char* base = reinterpret_cast<const char*>(hdr);
    while (offset + sizeof(nlattr) <= hdr->nlmsg_len) {
        auto* attr = reinterpret_cast<const nlattr*>(base + offset);
        if (attr->nla_len < sizeof(nlattr) || offset + attr->nla_len > hdr->nlmsg_len) break;
        if ((attr->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
            const char* text = base + offset + NLA_HDRLEN;
            st->kernel_message.assign(text, strnlen(text, attr->nla_len - NLA_HDRLEN));
        }
        offset += NLA_ALIGN(attr->nla_len);
    }
    return NL_STOP;
}

NlAddrPtr make_addr(Ipv4 ip, uint8_t prefix) {
    uint32_t be = ip.network_order();
    NlAddrPtr a(nl_addr_build(AF_INET, &be, sizeof(be)));
    if (a) nl_addr_set_prefixlen(a.get(), prefix);
    return a;
}

NlAddrPtr make_addr(const Ipv6& ip, uint8_t prefix) {
    NlAddrPtr a(nl_addr_build(AF_INET6, ip.bytes.data(), ip.bytes.size()));
    if (a) nl_addr_set_prefixlen(a.get(), prefix);
    return a;
}

constexpr int family_of(Ipv4) {
    return AF_INET;
}
constexpr int family_of(const Ipv6&) {
    return AF_INET6;
}

Errc errc_for(int err) {
    switch (err) {
        case EEXIST:
            return Errc::exists;
        case ENODEV:
        case ENOENT:
        case ESRCH:
        case EADDRNOTAVAIL:
            return Errc::not_found;
        case EINVAL:
        case ERANGE:
            return Errc::invalid_argument;
        default:
            return Errc::system;
    }
}

}  // namespace

RouteSocket::RouteSocket(std::unique_ptr<State> state) : state_(std::move(state)) {}
RouteSocket::RouteSocket(RouteSocket&&) noexcept = default;
RouteSocket& RouteSocket::operator=(RouteSocket&&) noexcept = default;
RouteSocket::~RouteSocket() = default;

Result<RouteSocket> RouteSocket::open() {
    auto st = std::make_unique<State>();
    st->sock = nl_socket_alloc();
    if (!st->sock) return fail(Errc::system, "netlink: cannot allocate a socket");
    if (int err = nl_connect(st->sock, NETLINK_ROUTE); err < 0)
        return fail(Errc::system, std::string("netlink: cannot connect: ") + nl_geterror(err));
    int one = 1;
    // Best effort: older kernels lack extended acks; errors then carry errno only.
    (void)setsockopt(nl_socket_get_fd(st->sock), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
    nl_socket_modify_err_cb(st->sock, NL_CB_CUSTOM, on_error, st.get());
    return RouteSocket(std::move(st));
}

Result<RouteSocket> RouteSocket::open_in(int netns_fd) {
    auto sw = NetnsSwitch::enter(netns_fd);
    if (!sw) return tl::unexpected(sw.error());
    return open();
}

namespace {

// Turns a libnl return code into a Result, naming the kernel's reason and the object.
Result<void> check(RouteSocket::State& st, int err, const std::string& what) {
    if (err >= 0) return {};
    std::string text = "netlink: ";
    Errc code = Errc::system;
    if (st.kernel_errno != 0) {
        text += strerror(st.kernel_errno);
        code = errc_for(st.kernel_errno);
    } else {
        text += nl_geterror(err);
        if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV) code = Errc::not_found;
        if (err == -NLE_EXIST) code = Errc::exists;
    }
    text += " (" + what + ")";
    if (!st.kernel_message.empty()) text += ": " + st.kernel_message;
    return fail(code, std::move(text));
}

void reset(RouteSocket::State& st) {
    st.kernel_errno = 0;
    st.kernel_message.clear();
}

}  // namespace

namespace {

LinkInfo info_of(rtnl_link* link) {
    LinkInfo info;
    info.ifindex = rtnl_link_get_ifindex(link);
    if (const char* n = rtnl_link_get_name(link)) info.name = n;
    if (const char* k = rtnl_link_get_type(link)) info.kind = k;
    info.mtu = rtnl_link_get_mtu(link);
    info.up = (rtnl_link_get_flags(link) & IFF_UP) != 0;
    return info;
}

}  // namespace

Result<LinkInfo> RouteSocket::link(const std::string& name) {
    reset(*state_);
    rtnl_link* raw = nullptr;
    int err = rtnl_link_get_kernel(state_->sock, 0, name.c_str(), &raw);
    LinkPtr link(raw);
    if (auto r = check(*state_, err, name); !r) {
        if (r.error().code == Errc::not_found || state_->kernel_errno == ENODEV)
            return fail(Errc::not_found, "netlink: Cannot find device \"" + name + "\"");
        return tl::unexpected(r.error());
    }
    return info_of(link.get());
}

Result<int> RouteSocket::ifindex(const std::string& name) {
    auto info = link(name);
    if (!info) return tl::unexpected(info.error());
    return info->ifindex;
}

Result<std::vector<LinkInfo>> RouteSocket::links() {
    reset(*state_);
    nl_cache* raw = nullptr;
    int err = rtnl_link_alloc_cache(state_->sock, AF_UNSPEC, &raw);
    CachePtr cache(raw);
    if (auto r = check(*state_, err, "list links"); !r) return tl::unexpected(r.error());
    std::vector<LinkInfo> out;
    for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
        out.push_back(info_of(reinterpret_cast<rtnl_link*>(o)));
    }
    return out;
}

Result<void> RouteSocket::add_bridge(const std::string& name, unsigned mtu) {
    reset(*state_);
    LinkPtr link(rtnl_link_alloc());
    if (!link) return fail(Errc::system, "netlink: out of memory");
    rtnl_link_set_name(link.get(), name.c_str());
    if (int err = rtnl_link_set_type(link.get(), "bridge"); err < 0)
        return check(*state_, err, name);
    // A fixed, random, locally administered MAC: otherwise the bridge takes its lowest port's
    // and changes it as ports come and go, leaving stale neighbour entries in the namespaces.
    unsigned char mac[6];
    if (getrandom(mac, sizeof mac, 0) != sizeof mac) return fail_errno("getrandom", errno);
    mac[0] = static_cast<unsigned char>((mac[0] & 0xfe) | 0x02);
    NlAddrPtr lladdr(nl_addr_build(AF_LLC, mac, sizeof mac));
    if (!lladdr) return fail(Errc::system, "netlink: out of memory");
    rtnl_link_set_addr(link.get(), lladdr.get());
    rtnl_link_set_flags(link.get(), IFF_UP);
    NM_TRY(
        check(*state_, rtnl_link_add(state_->sock, link.get(), NLM_F_CREATE | NLM_F_EXCL), name));
    if (!mtu) return {};
    // Set apart from creation, so the bridge keeps it as chosen rather than following its ports.
    auto index = ifindex(name);
    auto set =
        index ? set_link(*index, name, false, mtu) : Result<void>(tl::unexpected(index.error()));
    if (!set) (void)delete_link(name);  // all or nothing
    return set;
}

Result<void> RouteSocket::add_veth(const VethSpec& spec) {
    reset(*state_);
    LinkPtr link(rtnl_link_veth_alloc());
    if (!link) return fail(Errc::system, "netlink: out of memory");
    LinkPtr peer(rtnl_link_veth_get_peer(link.get()));
    rtnl_link_set_name(link.get(), spec.name.c_str());
    rtnl_link_set_name(peer.get(), spec.peer_name.c_str());
    if (spec.mtu) {
        rtnl_link_set_mtu(link.get(), spec.mtu);
        rtnl_link_set_mtu(peer.get(), spec.mtu);
    }
    // Only this end: the kernel opens the peer before the pair is joined, and veth refuses
    // to open without a peer (ENOTCONN).
    if (spec.up) rtnl_link_set_flags(link.get(), IFF_UP);
    if (spec.master_ifindex) rtnl_link_set_master(link.get(), spec.master_ifindex);
    if (spec.peer_netns_fd >= 0) rtnl_link_set_ns_fd(peer.get(), spec.peer_netns_fd);
    return check(*state_, rtnl_link_add(state_->sock, link.get(), NLM_F_CREATE | NLM_F_EXCL),
                 spec.name);
}

Result<void> RouteSocket::set_link(int ifindex, const std::string& name, bool up, unsigned mtu) {
    reset(*state_);
    LinkPtr orig(rtnl_link_alloc());
    LinkPtr change(rtnl_link_alloc());
    if (!orig || !change) return fail(Errc::system, "netlink: out of memory");
    rtnl_link_set_ifindex(orig.get(), ifindex);
    if (up) rtnl_link_set_flags(change.get(), IFF_UP);
    if (mtu) rtnl_link_set_mtu(change.get(), mtu);
    return check(*state_, rtnl_link_change(state_->sock, orig.get(), change.get(), 0), name);
}

Result<void> RouteSocket::set_link_down(int ifindex, const std::string& name) {
    reset(*state_);
    LinkPtr orig(rtnl_link_alloc());
    LinkPtr change(rtnl_link_alloc());
    if (!orig || !change) return fail(Errc::system, "netlink: out of memory");
    rtnl_link_set_ifindex(orig.get(), ifindex);
    rtnl_link_unset_flags(change.get(), IFF_UP);
    return check(*state_, rtnl_link_change(state_->sock, orig.get(), change.get(), 0), name);
}

Result<void> RouteSocket::delete_link(const std::string& name) {
    reset(*state_);
    LinkPtr link(rtnl_link_alloc());
    if (!link) return fail(Errc::system, "netlink: out of memory");
    rtnl_link_set_name(link.get(), name.c_str());
    auto r = check(*state_, rtnl_link_delete(state_->sock, link.get()), name);
    if (!r && state_->kernel_errno == ENODEV)
        return fail(Errc::not_found, "netlink: Cannot find device \"" + name + "\"");
    return r;
}

Result<void> RouteSocket::move_link(const std::string& name, int netns_fd) {
    auto index = ifindex(name);
    if (!index) return tl::unexpected(index.error());
    reset(*state_);
    LinkPtr orig(rtnl_link_alloc());
    LinkPtr change(rtnl_link_alloc());
    if (!orig || !change) return fail(Errc::system, "netlink: out of memory");
    rtnl_link_set_ifindex(orig.get(), *index);
    rtnl_link_set_ns_fd(change.get(), netns_fd);
    return check(*state_, rtnl_link_change(state_->sock, orig.get(), change.get(), 0), name);
}

Result<void> RouteSocket::set_master(int ifindex, const std::string& name, int master_ifindex) {
    reset(*state_);
    LinkPtr orig(rtnl_link_alloc());
    LinkPtr change(rtnl_link_alloc());
    if (!orig || !change) return fail(Errc::system, "netlink: out of memory");
    rtnl_link_set_ifindex(orig.get(), ifindex);
    rtnl_link_set_master(change.get(), master_ifindex);
    return check(*state_, rtnl_link_change(state_->sock, orig.get(), change.get(), 0), name);
}

namespace {

template <class Address>
Result<AddrPtr> make_rtnl_addr(int ifindex, const Address& ip, uint8_t prefix) {
    AddrPtr addr(rtnl_addr_alloc());
    NlAddrPtr local = make_addr(ip, prefix);
    if (!addr || !local) return fail(Errc::system, "netlink: out of memory");
    rtnl_addr_set_ifindex(addr.get(), ifindex);
    rtnl_addr_set_family(addr.get(), family_of(ip));
    if (int err = rtnl_addr_set_local(addr.get(), local.get()); err < 0)
        return fail(Errc::system, std::string("netlink: ") + nl_geterror(err));
    rtnl_addr_set_prefixlen(addr.get(), prefix);
    return addr;
}

// Adds (with ifa_flags) or, with remove, deletes one address of either family.
template <class Address>
Result<void> change_address(RouteSocket::State& st, bool remove, int ifindex,
                            const std::string& link, const Address& ip, uint8_t prefix,
                            unsigned ifa_flags) {
    reset(st);
    auto addr = make_rtnl_addr(ifindex, ip, prefix);
    if (!addr) return tl::unexpected(addr.error());
    if (ifa_flags) rtnl_addr_set_flags(addr->get(), ifa_flags);
    std::string what = ip.to_string() + "/" + std::to_string(prefix) + " on " + link;
    int err = remove ? rtnl_addr_delete(st.sock, addr->get(), 0)
                     : rtnl_addr_add(st.sock, addr->get(), NLM_F_EXCL);
    return check(st, err, what);
}

}  // namespace

Result<void> RouteSocket::add_address(int ifindex, const std::string& link, const Ipv6& ip,
                                      uint8_t prefix, bool prefix_route) {
    const unsigned flags = IFA_F_NODAD | (prefix_route ? 0u : unsigned{IFA_F_NOPREFIXROUTE});
    return change_address(*state_, false, ifindex, link, ip, prefix, flags);
}

Result<void> RouteSocket::delete_address(int ifindex, const std::string& link, const Ipv6& ip,
                                         uint8_t prefix) {
    return change_address(*state_, true, ifindex, link, ip, prefix, 0);
}

Result<void> RouteSocket::add_address(int ifindex, const std::string& link, Ipv4 ip,
                                      uint8_t prefix) {
    return change_address(*state_, false, ifindex, link, ip, prefix, 0);
}

Result<void> RouteSocket::delete_address(int ifindex, const std::string& link, Ipv4 ip,
                                         uint8_t prefix) {
    return change_address(*state_, true, ifindex, link, ip, prefix, 0);
}

namespace {

template <class Net, class Address>
Result<RoutePtr> make_route(const Net& dst, int ifindex, const std::optional<Address>& gateway) {
    RoutePtr route(rtnl_route_alloc());
    NlAddrPtr dst_addr = make_addr(dst.network, dst.prefix);
    rtnl_nexthop* nh = rtnl_route_nh_alloc();
    if (!route || !dst_addr || !nh) {
        if (nh) rtnl_route_nh_free(nh);
        return fail(Errc::system, "netlink: out of memory");
    }
    rtnl_route_set_family(route.get(), family_of(dst.network));
    rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
    rtnl_route_set_protocol(route.get(), RTPROT_BOOT);
    rtnl_route_set_type(route.get(), RTN_UNICAST);
    // IPv6 routes are universe-scoped whatever their next hop (as iproute2 sends them).
    const bool universe = gateway || family_of(dst.network) == AF_INET6;
    rtnl_route_set_scope(route.get(), universe ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
    if (int err = rtnl_route_set_dst(route.get(), dst_addr.get()); err < 0) {
        rtnl_route_nh_free(nh);
        return fail(Errc::system, std::string("netlink: ") + nl_geterror(err));
    }
    rtnl_route_nh_set_ifindex(nh, ifindex);
    if (gateway) {
        NlAddrPtr gw = make_addr(*gateway, family_of(*gateway) == AF_INET ? 32 : 128);
        rtnl_route_nh_set_gateway(nh, gw.get());
    }
    rtnl_route_add_nexthop(route.get(), nh);  // the route owns nh now
    return route;
}

template <class Net, class Address>
std::string route_text(const Net& dst, const std::optional<Address>& gateway) {
    return "route " + dst.to_string() + (gateway ? " via " + gateway->to_string() : std::string());
}

}  // namespace

namespace {

// Adds (flags NLM_F_REPLACE or NLM_F_EXCL) or, with remove, deletes one route of either family.
template <class Net, class Address>
Result<void> change_route(RouteSocket::State& st, bool remove, const Net& dst, int ifindex,
                          const std::optional<Address>& gateway, int flags) {
    reset(st);
    auto route = make_route(dst, ifindex, gateway);
    if (!route) return tl::unexpected(route.error());
    int err = remove ? rtnl_route_delete(st.sock, route->get(), 0)
                     : rtnl_route_add(st.sock, route->get(), flags);
    return check(st, err, route_text(dst, gateway));
}

}  // namespace

Result<void> RouteSocket::add_route(Cidr dst, int ifindex, std::optional<Ipv4> gateway,
                                    bool replace) {
    return change_route(*state_, false, dst, ifindex, gateway,
                        replace ? NLM_F_REPLACE : NLM_F_EXCL);
}

Result<void> RouteSocket::delete_route(Cidr dst, int ifindex, std::optional<Ipv4> gateway) {
    return change_route(*state_, true, dst, ifindex, gateway, 0);
}

Result<void> RouteSocket::add_route(const Cidr6& dst, int ifindex, std::optional<Ipv6> gateway,
                                    bool replace) {
    return change_route(*state_, false, dst, ifindex, gateway,
                        replace ? NLM_F_REPLACE : NLM_F_EXCL);
}

Result<void> RouteSocket::delete_route(const Cidr6& dst, int ifindex, std::optional<Ipv6> gateway) {
    return change_route(*state_, true, dst, ifindex, gateway, 0);
}

Result<std::optional<std::string>> RouteSocket::default_route_link() {
    reset(*state_);
    nl_cache* raw = nullptr;
    int err = rtnl_route_alloc_cache(state_->sock, AF_INET, 0, &raw);
    CachePtr cache(raw);
    if (auto r = check(*state_, err, "list routes"); !r) return tl::unexpected(r.error());
    int best_index = 0;
    uint32_t best_metric = 0;
    for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
        auto* route = reinterpret_cast<rtnl_route*>(o);
        nl_addr* dst = rtnl_route_get_dst(route);
        if (rtnl_route_get_table(route) != RT_TABLE_MAIN ||
            rtnl_route_get_type(route) != RTN_UNICAST || (dst && nl_addr_get_prefixlen(dst) != 0))
            continue;
        if (rtnl_route_get_nnexthops(route) < 1) continue;
        int index = rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(route, 0));
        uint32_t metric = rtnl_route_get_priority(route);
        if (index > 0 && (!best_index || metric < best_metric)) {
            best_index = index;
            best_metric = metric;
        }
    }
    if (!best_index) return std::optional<std::string>{};
    rtnl_link* raw_link = nullptr;
    err = rtnl_link_get_kernel(state_->sock, best_index, nullptr, &raw_link);
    LinkPtr link(raw_link);
    if (auto r = check(*state_, err, "default route link"); !r) return tl::unexpected(r.error());
    const char* name = rtnl_link_get_name(link.get());
    return std::optional<std::string>{name ? name : ""};
}

}  // namespace nm
