#pragma once
// One translation table entry: where one service instance lives (protocol.md, "Translation table
// entry").
#include <cstdint>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "core/address_plan.hpp"
#include "core/error.hpp"

namespace nm {

enum class IpType : uint8_t { RR, Closest, InstanceNumber };

struct ServiceIp {
    IpType type = IpType::RR;
    Ipv4 address;
    Ipv6 address_v6{};  // the same ServiceIP's IPv6 address ("Address_v6"); :: when it has none
    friend bool operator==(const ServiceIp&, const ServiceIp&) = default;
};

struct TableEntry {
    std::string appname, appns, servicename, servicenamespace;
    int instancenumber = 0;
    Ipv4 nodeip;
    uint16_t nodeport = 0;
    Ipv4 nsip;
    Ipv6 nsipv6{};  // the namespace's IPv6 address; :: when it has none (Go agents drop those)
    std::vector<ServiceIp> serviceip;

    // "app.appns.service.servicens"
    std::string job_name() const;
    friend bool operator==(const TableEntry&, const TableEntry&) = default;
};

// "RR" / "Closest" / "InstanceNumber"
std::string_view to_string(IpType type);
Result<IpType> parse_ip_type(std::string_view text);

// Splits "app.appns.svc.svcns" into the four name fields; each 1..30 chars of [A-Za-z0-9-]
// (Oakestra task ids carry upper case). Names are compared case-sensitively everywhere.
struct JobName {
    std::string appname, appns, servicename, servicenamespace;
};
Result<JobName> parse_job_name(std::string_view text);

// Checks every field; the message names the first bad one ("nsip: 1.2.3.4 is outside
// 172.16.0.0/12"). IPv6 addresses are optional; when given they must lie in the IPv6 networks.
Result<void> validate(const TableEntry& entry, const Networks& networks);

}  // namespace nm
