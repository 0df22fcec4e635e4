#pragma once
// The agent's own nftables table (libnftables, in the calling thread's namespace):
//   forward:     bridge <-> TUN accepted, DNAT'ed and established traffic accepted
//   postrouting: masquerade of the subnet through the uplink (optional), of port-mapped
//                namespaces leaving anywhere but bridge/TUN, and of hairpin DNAT on the bridge
//   prerouting/output: DNAT of the node's host ports to namespaces, from maps
// Port mappings are map elements, so adding and removing them is one atomic transaction and
// touches no rule. One table per agent: deleting it removes everything at once.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "core/error.hpp"
#include "env/port_mapping.hpp"

struct nft_ctx;

namespace nm {

struct FirewallSpec {
    std::string table;  // in family ip, and ip6 when subnet_v6 is set
    std::string bridge;
    std::string tun;
    std::string uplink;  // empty: no uplink masquerade
    Cidr subnet;
    std::optional<Cidr6> subnet_v6;  // none: no ip6 table
};

class Firewall {
  public:
    // Creates the table(s) in one transaction (failing with Errc::exists if one is there already).
    static Result<Firewall> create(const FirewallSpec& spec);
    // Deletes tables `ip <table>` and `ip6 <table>` where present; those it deleted
    // ("ip <table>", ...).
    static Result<std::vector<std::string>> remove_table(const std::string& table);

    Firewall(Firewall&&) noexcept;
    Firewall& operator=(Firewall&&) noexcept;
    ~Firewall();

    // DNAT each host port to target:container port and masquerade target's outbound traffic,
    // for IPv6 too when target_v6 is given (the ip6 table exists). All or nothing: a host port
    // already mapped fails the whole call (Errc::exists).
    Result<void> add_port_mappings(Ipv4 target, const std::optional<Ipv6>& target_v6,
                                   const std::vector<PortMapping>& ports);
    Result<void> remove_port_mappings(Ipv4 target, const std::optional<Ipv6>& target_v6,
                                      const std::vector<PortMapping>& ports);
    // Deletes the table.
    Result<void> destroy();

    const std::string& table() const { return spec_.table; }

  private:
    Firewall(FirewallSpec spec, nft_ctx* ctx);
    // One nft run that creates or deletes ("create" / "delete") the mappings in both tables.
    Result<void> change_port_mappings(const char* verb, Ipv4 target,
                                      const std::optional<Ipv6>& target_v6,
                                      const std::vector<PortMapping>& ports);
    FirewallSpec spec_;
    nft_ctx* ctx_ = nullptr;
};

// Runs an nft script in `ctx`; the output on success, the first error line (with the failing
// command) on failure (Errc::not_found for a missing table or chain, Errc::exists).
Result<std::string> run_nft(nft_ctx* ctx, const std::string& script);
// The same in a fresh context (in the calling thread's namespace), with libnftables' output
// flags (NFT_CTX_OUTPUT_HANDLE, ...).
Result<std::string> run_nft(const std::string& script, unsigned output_flags = 0);

}  // namespace nm
