#pragma once
// The node's container network (protocol.md "Addressing", architecture.md "Environment"):
// bridge, TUN addressing and routes, app namespaces with veth pairs, the address pool and the
// agent's nftables table, all built through netlink/nftables in-process and always undone.
//
// Threading and namespaces: every call works on the network namespace of the calling thread
// (the node's, or a simulated host's), so call setup() and all later methods (and destroy the
// object) on threads in that same namespace (the lead: shard 0). Creating a namespace
// unshare()s the calling thread for a few microseconds and returns it to its own namespace. Calls
// are synchronous; netlink answers in microseconds. A NodeNetwork is move-only; its destructor runs
// teardown().
//
// Names: everything the agent creates carries `prefix`:
//   namespaces   /run/netns/<prefix><name>   (iproute2-compatible: `ip netns exec` works)
//   host veths   <prefix>v<n>                (on the bridge; the peer is `inner_link` inside)
//   nft tables   ip netmanager_<prefix>, and ip6 netmanager_<prefix> when the node has an IPv6
//                subnet (forwarding, masquerade, port-mapping DNAT)
// IPv6: with `subnet_v6` set the node is dual-stack: the bridge gets base+1 of it, every
// namespace the next free address (no duplicate address detection) and IPv6 routes via the
// bridge, the TUN `tun_ipv6` and routes for the IPv6 container and service networks, and IPv6
// forwarding is on. Without it everything stays IPv4-only.
// Startup (setup) removes leftovers of a run that died: every namespace starting with
// `prefix`, every unikernel namespace (`*.instance.<n>`) holding this agent's table, every veth
// starting with `<prefix>v`, the table, and a stale bridge of that name; except what it adopts
// from an EarlierRun (below).
// So `prefix` must not be a prefix of any namespace the agent does not own.
//
// Failures: each multi-step call undoes its earlier steps before returning an error, so no
// half-built namespace, veth, address or rule survives. Kernel refusals carry the kernel's
// reason: "netlink: File exists (e1v3)".
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "core/config.hpp"
#include "core/error.hpp"
#include "env/address_pool.hpp"
#include "env/port_mapping.hpp"

namespace nm {

struct NodeNetworkConfig {
    std::string prefix = "nm";  // 1..9 chars of [a-zA-Z0-9_-]
    std::string bridge = "goProxyBridge";
    Cidr subnet{Ipv4{0x0a120040}, 26};  // 10.18.0.64/26; the bridge takes base+1
    Networks networks;
    std::string tun_name = "goProxyTun";  // named in the forwarding rules before it exists
    Ipv4 tun_ip = default_tunnel_ip;      // kept out of the address pool when in the subnet
    std::optional<Cidr6> subnet_v6;       // e.g. fc00::100/120; none: no IPv6
    Ipv6 tun_ipv6 = default_tunnel_ipv6;  // fcef::dead:beef, shown with /7 as the reference's
    unsigned mtu = 1450;                  // bridge, veths (both ends)
    std::string uplink;                   // non-empty: masquerade the subnet leaving through it
    uint16_t tunnel_port = 50103;         // no UDP port mapping may take it
    // With no uplink named: take the link of the IPv4 default route at setup (none: no
    // masquerade), as the reference does when DefaultInterface is empty.
    bool detect_uplink = false;
    // A default route via the bridge inside each namespace, so replies to port-mapped and
    // masqueraded traffic find their way. An existing default route is left alone.
    bool namespace_default_route = true;
    // Testing: the n-th netlink/nft/namespace step (counting from 0, setup's included) fails.
    int fail_at_step = -1;

    // The agent's Config plus the subnets assigned by the cluster (or Config::subnet and
    // Config::subnet_v6); the bridge and veths take Config::veth_mtu().
    static NodeNetworkConfig from(const Config& config, Cidr subnet,
                                  std::optional<Cidr6> subnet_v6 = std::nullopt);
};

struct AttachOptions {
    std::optional<Ipv4> address;      // a specific address in the subnet; default: the pool's next
    std::vector<PortMapping> ports;   // DNAT host port -> namespace, masquerade outbound
    std::string inner_link = "eth0";  // the veth end's name inside the namespace
};

struct Attachment {
    std::string netns;       // "<prefix><name>" for attach_new_namespace; empty for attach_pid
    int pid = 0;             // attach_pid's process; 0 otherwise
    std::string host_link;   // "<prefix>v<n>", on the bridge; the key for detach()
    std::string inner_link;  // inside the namespace
    Ipv4 address;
    uint8_t prefix = 24;             // the subnet's
    std::optional<Ipv6> address_v6;  // when the node has an IPv6 subnet
    uint8_t prefix_v6 = 0;           // its prefix
    std::vector<PortMapping> ports;
    uint64_t netns_inode = 0;  // identifies the namespace (a restart checks it is still the same)
};

// What an earlier run of this agent built, as its state file recorded it (node/state_file.hpp),
// for a start after that run died: setup() keeps the attachments whose workload is still alive
// and restores, at teardown, the machine's sysctl values from before that run.
struct EarlierRun {
    std::vector<Attachment> attachments;
    std::optional<std::string> ip_forward;    // net.ipv4.ip_forward before the first run
    std::optional<std::string> ipv6_forward;  // net.ipv6.conf.all.forwarding, likewise
};

class NodeNetwork {
  public:
    // Removes leftovers, then builds the bridge (<subnet>.1/prefix, MTU, up), turns IPv4
    // forwarding on (restored by teardown), rp_filter off on the bridge, the nft table, and
    // accept rules for the bridge in iptables' FORWARD chain when there is one
    // (env/forward_accepts.hpp).
    // With an earlier run (env/adopt.cpp): each of its attachments whose namespace is still the
    // same, whose host veth is still there and in which a process still runs (a named
    // namespace) or whose process still runs (attach_pid) is kept as it is, bridge included,
    // and listed by attachments() again; its port mappings are added again. The rest is removed
    // as leftovers. The sysctl values it names are the ones teardown restores.
    static Result<NodeNetwork> setup(const NodeNetworkConfig& config,
                                     const EarlierRun& earlier = {});

    // What setup() does first, on its own: removes what a dead agent with this prefix left in
    // the calling thread's namespace and /run/netns, except the namespaces and veths of `keep`
    // (and then the bridge). Returns one line per removed object.
    static Result<std::vector<std::string>> remove_leftovers(
        const NodeNetworkConfig& config, const std::vector<Attachment>& keep = {});
    // The attachments of an earlier run that still carry a workload (see setup); says why each
    // other one is not kept.
    static std::vector<Attachment> alive_attachments(const NodeNetworkConfig& config,
                                                     const std::vector<Attachment>& earlier);

    // For the TUN device the tunnel created: address ip/32, MTU, up, rp_filter off, and routes
    // for the service and container networks to it (the subnet stays on the bridge, being more
    // specific; the container network TunnelIP/12 is the reference's "10.30.0.0/12" route).
    // With IPv6: address tun_ipv6/7 (without its prefix route) and routes for the IPv6 service
    // and container networks (the node's /120 stays on the bridge).
    // Repeatable; teardown removes the addresses and routes, not the device.
    Result<void> configure_tun(const std::string& name, Ipv4 ip, unsigned mtu);

    // Creates /run/netns/<prefix><name> and attaches it: veth pair (host end on the bridge, the
    // peer created inside the namespace), address/prefix, lo up, routes for the container and
    // service networks (and default) via the bridge address, MTU both ends, port mappings. With
    // IPv6 the same again for the IPv6 address, networks and default route (DNAT too).
    Result<Attachment> attach_new_namespace(const std::string& name,
                                            const AttachOptions& options = {});
    // A unikernel's network (protocol.md, /unikernel/deploy): creates /run/netns/<netns> (the
    // name exactly as given, <job>.instance.<n>) and attaches it like attach_new_namespace;
    // inside, bridge virbr0 192.168.1.1/30 with the persistent tap tap0 the VM opens, and an nft
    // table (named like the agent's) that SNATs what leaves the veth to the namespace address
    // and DNATs what arrives on it to the guest, 192.168.1.2. All or nothing.
    Result<Attachment> attach_unikernel(const std::string& netns,
                                        const AttachOptions& options = {});
    // Attaches the network namespace of a running process (/proc/<pid>/ns/net) the same way.
    Result<Attachment> attach_pid(int pid, const AttachOptions& options = {});
    // Removes the port mappings, the veth pair, the namespace if we created it, and frees the
    // address. A veth that vanished with its namespace (the container exited) is no error.
    // For a namespace we created, the address is removed inside it and the namespace unmounted;
    // the kernel then destroys it together with the veth pair in its batched namespace cleanup
    // (milliseconds later), because deleting a link alone waits ~30 ms for RCU. For attach_pid
    // the host end is deleted at once (the process's namespace lives on).
    Result<void> detach(const std::string& host_link);
    // Detaches everything, removes TUN routes/address, table and bridge, restores forwarding.
    // Idempotent; errors are logged.
    void teardown();

    // The machine's values of the sysctls setup changed, as teardown restores them.
    std::optional<std::string> original_ip_forward() const;
    std::optional<std::string> original_ipv6_forward() const;

    const NodeNetworkConfig& config() const;
    const AddressPool& pool() const;
    std::vector<Attachment> attachments() const;
    std::string table_name() const;

    // Testing: the n-th netlink/nft/namespace step from now fails, so the undo of every
    // earlier step can be checked. n < 0 disables it.
    void fail_at_step_for_testing(int n);

    NodeNetwork(NodeNetwork&&) noexcept;
    NodeNetwork& operator=(NodeNetwork&&) noexcept;
    ~NodeNetwork();

    struct Impl;

  private:
    explicit NodeNetwork(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace nm
