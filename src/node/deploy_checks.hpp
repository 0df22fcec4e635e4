#pragma once
// What a deployment asked through the node API may not take: ServiceIPs that the table gives to
// another job, and host ports the node itself listens on (a container mapping the API's, the
// tunnel's or the DNS port would receive what was meant for the agent).
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/error.hpp"
#include "env/port_mapping.hpp"
#include "table/translation_table.hpp"

namespace nm {

struct ReservedPort {
    uint16_t port = 0;
    L4Proto proto = L4Proto::tcp;
    std::string owner;  // "the node API", for the error
};

// The ports the agent itself listens on besides the tunnel's (NodeNetwork refuses that one
// itself, as it owns the tunnel's configuration): the TCP API and the DNS server (UDP and TCP).
std::vector<ReservedPort> node_reserved_ports(const Config& config);

// Errc::conflict naming the first ServiceIP of `wanted` that an entry of another job carries.
Result<void> check_service_ip_claims(const TranslationTable& table, std::string_view job,
                                     std::span<const ServiceIp> wanted);

// Errc::conflict naming the first mapping whose host port is reserved for the same protocol.
Result<void> check_host_ports(std::span<const PortMapping> mappings,
                              std::span<const ReservedPort> reserved);

}  // namespace nm
