#pragma once
// The narrow interface between the HTTP API and the node (protocol.md, "Node API").
// The API layer validates every body field by field before it calls anything here, so an
// implementation sees only well-formed requests; it still answers errors for state
// (not registered, unknown instance, pool exhausted...). Every method runs on shard 0.
#include <sys/types.h>

#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "core/error.hpp"
#include "core/shard.hpp"
#include "table/entry.hpp"

namespace nm {

// POST /register: v0.4 {"client_id", "cluster_address"} or the seed's {"subnetwork"}.
struct RegisterRequest {
    std::string client_id;        // v0.4: the node's worker id (MQTT client id)
    std::string cluster_address;  // v0.4: the broker's host (port from config); empty: ClusterUrl
    std::optional<Cidr> subnetwork;  // seed form: this node's subnet (a bare address means /24)
};

enum class DeployKind {
    docker,     // POST /docker/deploy (seed): container id resolved to a pid through the engine
    container,  // POST /container/deploy (v0.4): by pid
    netns,      // POST /netns/deploy (extension): the agent creates the named namespace itself
    unikernel,  // POST /unikernel/deploy (v0.4): namespace <job>.instance.<n> with virbr0 and tap0
};

struct DeployRequest {
    DeployKind kind = DeployKind::container;
    std::string service_name;            // the job name "app.appns.svc.svcns", already checked
    JobName job;                         // its four parts
    int instance_number = 0;             // >= 0
    pid_t pid = 0;                       // docker, container: a process inside the target namespace
    std::string container_id;            // docker: as given (for logs and status)
    std::string netns_name;              // netns: the namespace to create (/run/netns/<name>)
    std::string port_mappings;           // container: "8080:80/tcp;9000:9000/udp" (syntax checked)
    std::optional<Ipv4> ns_address;      // netns: requested address in the node subnet
    std::vector<ServiceIp> service_ips;  // docker (seed), netns: ServiceIPs of this instance
    std::optional<Ipv4> node_ip;  // docker (seed): the node's tunnel address as the caller sees it
    std::optional<uint16_t> node_port;  // docker (seed): the node's tunnel port
};

struct DeployResult {
    std::string service_name;
    Ipv4 ns_address;
    std::string ns_address_v6;  // empty when the node has no IPv6 subnet
};

// POST /docker/undeploy, /container/undeploy, /netns/undeploy, /unikernel/undeploy.
struct UndeployRequest {
    DeployKind kind = DeployKind::container;
    std::string service_name;
    int instance_number = 0;
};

// DELETE /table?job=app.appns.svc.svcns[&instance=N] (extension, standalone mode).
struct TableRemoveRequest {
    std::string job;
    std::optional<int> instance_number;  // none: every instance of the job
};

class NodeControl {
  public:
    virtual ~NodeControl() = default;

    // True once the node has its subnet (standalone: from the start). Deploys before that are
    // answered 409 by the API without calling deploy().
    virtual bool registered() const = 0;

    // Same client_id again: success; a different one: invalid_argument.
    virtual awaitable<Result<void>> register_node(RegisterRequest request) = 0;
    virtual awaitable<Result<DeployResult>> deploy(DeployRequest request) = 0;
    // not_found when no such instance runs here.
    virtual awaitable<Result<void>> undeploy(UndeployRequest request) = 0;

    // GET /status: a JSON object (state, node id, subnet, instances, ...).
    virtual awaitable<Result<boost::json::value>> status() = 0;
    // GET /table: the translation table, entries in the form of POST /table.
    virtual awaitable<Result<boost::json::value>> table() = 0;
    // GET /metrics: Prometheus text exposition format.
    virtual awaitable<Result<std::string>> metrics() = 0;

    // POST /table (standalone mode): entries already validated. Returns how many were written.
    virtual awaitable<Result<size_t>> add_table_entries(std::vector<TableEntry> entries) = 0;
    // DELETE /table: returns how many entries were removed (not_found when none matched).
    virtual awaitable<Result<size_t>> remove_table_entries(TableRemoveRequest request) = 0;
};

}  // namespace nm
