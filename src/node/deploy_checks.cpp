#include "node/deploy_checks.hpp"

namespace nm {

std::vector<ReservedPort> node_reserved_ports(const Config& config) {
    std::vector<ReservedPort> ports;
    if (config.api_port) ports.push_back({config.api_port, L4Proto::tcp, "the node API"});
    // The names server (docs/names.md): a mapping of its port would take the app namespaces'
    // port-53 queries the redirect brings to the node.
    if (config.dns_port)
        for (L4Proto proto : {L4Proto::udp, L4Proto::tcp})
            ports.push_back({config.dns_port, proto, "the DNS server"});
    return ports;
}

Result<void> check_service_ip_claims(const TranslationTable& table, std::string_view job,
                                     std::span<const ServiceIp> wanted) {
    for (const auto& sip : wanted) {
        const ServiceGroup* group = table.find_service(sip.address);
        if (!group) continue;
        for (uint32_t slot : group->slots()) {
            const TableEntry& holder = table.entry(slot);
            if (holder.job_name() != job)
                return fail(Errc::conflict, "ServiceIP " + sip.address.to_string() +
                                                " belongs to " + holder.job_name());
        }
    }
    return {};
}

Result<void> check_host_ports(std::span<const PortMapping> mappings,
                              std::span<const ReservedPort> reserved) {
    for (const auto& m : mappings)
        for (const auto& r : reserved)
            if (m.host_port == r.port && m.proto == r.proto)
                return fail(Errc::conflict, "host port " + std::to_string(r.port) + "/" +
                                                std::string(to_string(r.proto)) + " is " + r.owner +
                                                "'s; map another");
    return {};
}

}  // namespace nm
