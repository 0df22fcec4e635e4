#pragma once
// Field-by-field validation of the Node API's request bodies (protocol.md, "Node API").
// Each parser returns a request NodeControl can act on, or an invalid_argument error naming
// the first bad field; nothing is called before a body has passed.
#include <string>
#include <string_view>
#include <vector>

#include "api/node_control.hpp"
#include "core/address_plan.hpp"

namespace nm {

Result<RegisterRequest> parse_register_body(std::string_view body, const Networks& nets);
// Seed /docker/deploy: the pid is still to be found from container_id.
Result<DeployRequest> parse_docker_deploy_body(std::string_view body, const Networks& nets);
Result<DeployRequest> parse_container_deploy_body(std::string_view body);
// As container deploy; "pid" (the node engine sends 0) may be absent and is ignored.
Result<DeployRequest> parse_unikernel_deploy_body(std::string_view body);
Result<DeployRequest> parse_netns_deploy_body(std::string_view body, const Networks& nets);
Result<UndeployRequest> parse_undeploy_body(std::string_view body, DeployKind kind);
// POST /table: {"entries": [entry, ...]} or a bare array; entry fields as in protocol.md's
// translation table (appname, appns, servicename, servicenamespace, instancenumber, nodeip,
// nodeport, nsip, serviceip [{IpType, Address}]).
Result<std::vector<TableEntry>> parse_table_entries_body(std::string_view body,
                                                         const Networks& nets);
// DELETE /table?job=a.b.c.d[&instance=N]
Result<TableRemoveRequest> parse_table_remove_query(std::string_view query);

// A container id or name as the Docker engine accepts it.
Result<void> check_container_id(std::string_view id);
// A namespace name usable as /run/netns/<name>.
Result<void> check_netns_name(std::string_view name);

}  // namespace nm
