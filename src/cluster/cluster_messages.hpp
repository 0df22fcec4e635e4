#pragma once
// Payloads of the cluster link (protocol.md, "Cluster link"), built and parsed without I/O.
// Parsers never throw: malformed input is an Errc::invalid_argument naming the bad field.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "core/address_plan.hpp"
#include "core/error.hpp"
#include "table/entry.hpp"

namespace nm {

// nodes/<id>/net/subnetwork/result: {"address": "10.18.0.64", "addressv6": "fc00::100"}, bare
// bases as the cluster's root hands them out: the IPv4 one gets `prefix` (a /26), the IPv6 one
// `prefix_v6` (a /120); "a.b.c.d/n" keeps n. addressv6 may be absent or empty.
struct SubnetAssignment {
    Cidr subnet;
    std::optional<Cidr6> subnet_v6;  // fc00::100/120; none when the cluster sent none
};
Result<SubnetAssignment> parse_subnetwork_result(std::string_view payload,
                                                 uint8_t prefix = default_subnet_prefix,
                                                 uint8_t prefix_v6 = default_subnet_prefix_v6);

// nodes/<id>/net/tablequery/result (protocol.md): read per instance, as leniently as the
// reference. An instance not yet running (namespace_ip, namespace_ip_v6, host_ip or host_port
// missing or null) is skipped as pending; one with a bad value is skipped as invalid; the others
// are kept. Unknown fields are ignored; an IpType other than RR or Closest ("instance_ip", the
// released cluster's name, or anything else) is the instance's own address, as the reference
// maps it; host_port may be an integer or a string of digits.
struct TableQueryResult {
    std::string app_name;   // as sent; empty when "" or null
    std::string query_key;  // the sip or sname asked for (absent from seed-era answers)
    std::string job;        // the entries' job: app_name, or query_key when that is a job name
    std::vector<TableEntry> entries;
    size_t pending = 0;                // instances skipped as not yet running
    std::vector<std::string> invalid;  // instances skipped for a bad value: why, one each
};
// An error only when the payload as a whole is unusable (not a JSON object, instance_list not
// an array, or instances with no job name to file them under).
Result<TableQueryResult> parse_tablequery_result(std::string_view payload);
// "RR" and "Closest" as named; every other type means the instance's own address.
IpType ip_type_as_reference(std::string_view type);

// {"sname": "", "sip": "10.30.0.4"}, {"sname": "", "sip": "fdff:2000::3"} and
// {"sname": "a.b.c.d", "sip": ""}.
std::string tablequery_request_by_ip(Ipv4 address);
std::string tablequery_request_by_ip(const Ipv6& address);
std::string tablequery_request_by_name(std::string_view job);

// service/deployed
struct DeployedNotice {
    std::string appname;  // job name
    std::string status = "DEPLOYED";
    int instance_number = 0;
    Ipv4 nsip;
    std::string nsipv6;  // "" when the instance has no IPv6 address
    Ipv4 host_ip;
    uint16_t host_port = 0;
};
std::string to_payload(const DeployedNotice& notice);

std::string subnet_request_payload();  // {"METHOD": "GET"}
std::string undeployed_payload(std::string_view job, int instance_number);
std::string address_changed_payload(std::string_view job, int instance_number, Ipv4 host_ip,
                                    uint16_t host_port);
std::string interest_remove_payload(std::string_view job);

}  // namespace nm
