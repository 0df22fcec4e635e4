#pragma once
// What the agent built, kept in a file under /run so that a start after a crash takes the
// workloads back instead of removing them (docs/restart.md): the subnets, the registration,
// the machine's sysctl values from before the first run, and every deployed instance with its
// attachment and table entry. Written whole after each change (a temporary file renamed over
// the old one, so a crash leaves the old or the new file, never half of one); removed by a
// clean stop. Versioned JSON:
//   {"version": 1, "prefix": "nm", "subnet": "10.18.0.64/26", "subnet_v6": "fc00::100/120",
//    "client_id": "...", "cluster_host": "...",
//    "sysctls": {"net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0"},
//    "instances": [{"job": "a.b.c.d", "instance_number": 0, "kind": "netns", "netns": "nm-x",
//      "pid": 0, "netns_inode": 4026532, "host_link": "nmv0", "inner_link": "eth0",
//      "address": "10.18.0.66", "prefix": 26, "address_v6": "fc00::102", "prefix_v6": 120,
//      "ports": "8080:80/tcp", "entry": {table entry, table/table_json.hpp}}]}
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/node_control.hpp"
#include "core/address.hpp"
#include "core/error.hpp"
#include "env/node_network.hpp"
#include "table/entry.hpp"

namespace nm {

// One deployed instance, as the node keeps it.
struct InstanceRecord {
    std::string job;
    int instance_number = 0;
    DeployKind kind{};
    Attachment attachment;
    TableEntry entry;
};

struct NodeState {
    static constexpr int version = 1;
    std::string prefix;
    Cidr subnet;
    std::optional<Cidr6> subnet_v6;
    std::string client_id;                    // cluster mode: the registration; empty otherwise
    std::string cluster_host;                 // the broker's host
    std::optional<std::string> ip_forward;    // the machine's values before the first run
    std::optional<std::string> ipv6_forward;  // (the ones a clean stop restores)
    std::vector<InstanceRecord> instances;
};

// /run/netmanager/state-<prefix>.json: agents with different prefixes keep different files.
std::string state_file_path(const std::string& prefix);

std::string state_to_text(const NodeState& state);
// Errors say what is wrong: not JSON, an unknown version, which field of which instance.
Result<NodeState> state_from_text(std::string_view text);

// Creates the directory when missing; writes path + ".tmp", then renames it over path.
Result<void> write_state_file(const std::string& path, const NodeState& state);
// nullopt when there is no file; an error when it cannot be read or is not a valid state.
Result<std::optional<NodeState>> read_state_file(const std::string& path);
// Removes the file (and its temporary); a missing file is no error.
void remove_state_file(const std::string& path);

}  // namespace nm
