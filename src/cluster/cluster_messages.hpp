#pragma once
// Payloads of the cluster link (protocol.md, "Cluster link"), built and parsed without I/O.
// Parsers never throw: malformed input is an Errc::invalid_argument naming the bad field.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "core/error.hpp"
#include "tunnel/entry.hpp"

namespace nm {

// nodes/<id>/net/subnetwork/result: {"address": "172.19.1.0", "addressv6": "..."}.
// A bare address gets default_prefix; "a.b.c.d/n" keeps n.
struct SubnetAssignment {
    Cidr subnet;
    std::string subnet_v6;
};
Result<SubnetAssignment> parse_subnetwork_result(std::string_view payload, uint8_t default_prefix = 24);

// nodes/<id>/net/tablequery/result.
struct TableQueryResult {
    std::string app_name;   // the job name (empty in some "not found" answers)
    std::string query_key;  // the sip or sname asked for (absent from seed-era answers)
    std::vector<TableEntry> entries;
};
Result<TableQueryResult> parse_tablequery_result(std::string_view payload);

// {"sname": "", "sip": "172.30.0.4"} and {"sname": "a.b.c.d", "sip": ""}.
std::string tablequery_request_by_ip(Ipv4 address);
std::string tablequery_request_by_name(std::string_view job);

// service/deployed
struct DeployedNotice {
    std::string appname;  // job name
    std::string status = "DEPLOYED";
    int instance_number = 0;
    Ipv4 nsip;
    std::string nsipv6;
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
