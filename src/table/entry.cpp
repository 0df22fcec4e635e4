#include "table/entry.hpp"

#include <algorithm>

namespace nm {

std::string TableEntry::job_name() const {
    return appname + "." + appns + "." + servicename + "." + servicenamespace;
}

std::string_view to_string(IpType type) {
    switch (type) {
        case IpType::RR:
            return "RR";
        case IpType::Closest:
            return "Closest";
        case IpType::InstanceNumber:
            return "InstanceNumber";
    }
    return "?";
}

Result<IpType> parse_ip_type(std::string_view text) {
    if (text == "RR") return IpType::RR;
    if (text == "Closest") return IpType::Closest;
    if (text == "InstanceNumber") return IpType::InstanceNumber;
    return fail(Errc::invalid_argument,
                "IpType must be RR, Closest or InstanceNumber, got '" + excerpt(text) + "'");
}

namespace {
Result<void> check_name_part(std::string_view field, std::string_view value) {
    if (value.empty() || value.size() > 30)
        return fail(
            Errc::invalid_argument,
            std::string(field) + ": must have 1 to 30 characters, got '" + excerpt(value) + "'");
    bool ok = std::all_of(value.begin(), value.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-';
    });
    if (!ok)
        return fail(Errc::invalid_argument, std::string(field) +
                                                ": only A-Z, a-z, 0-9 and '-' allowed, got '" +
                                                excerpt(value) + "'");
    return {};
}
}  // namespace

Result<JobName> parse_job_name(std::string_view text) {
    JobName job;
    std::string* parts[] = {&job.appname, &job.appns, &job.servicename, &job.servicenamespace};
    static constexpr std::string_view names[] = {"appname", "appns", "servicename",
                                                 "servicenamespace"};
    size_t start = 0;
    for (int i = 0; i < 4; ++i) {
        size_t dot = text.find('.', start);
        if ((i < 3) == (dot == std::string_view::npos))
            return fail(Errc::invalid_argument,
                        "service name must have exactly four dot-separated parts "
                        "(app.appns.service.servicens), got '" +
                            excerpt(text) + "'");
        auto part = text.substr(start, i < 3 ? dot - start : std::string_view::npos);
        if (auto r = check_name_part(names[i], part); !r) return tl::unexpected(r.error());
        *parts[i] = std::string(part);
        start = dot + 1;
    }
    return job;
}

Result<void> validate(const TableEntry& e, const Networks& networks) {
    const Cidr& container_network = networks.container_network;
    const Cidr& service_network = networks.service_network;
    const Cidr6& container_network_v6 = networks.container_network_v6;
    const Cidr6& service_network_v6 = networks.service_network_v6;
    for (auto [field, value] :
         {std::pair<std::string_view, const std::string&>{"appname", e.appname},
          {"appns", e.appns},
          {"servicename", e.servicename},
          {"servicenamespace", e.servicenamespace}}) {
        if (auto r = check_name_part(field, value); !r) return r;
    }
    if (e.instancenumber < 0)
        return fail(Errc::invalid_argument,
                    "instancenumber: must be >= 0, got " + std::to_string(e.instancenumber));
    if (e.nodeip.value == 0) return fail(Errc::invalid_argument, "nodeip: missing");
    if (e.nodeport == 0) return fail(Errc::invalid_argument, "nodeport: must be 1..65535");
    if (!container_network.contains(e.nsip))
        return fail(Errc::invalid_argument, "nsip: " + e.nsip.to_string() +
                                                " is outside the container network " +
                                                container_network.to_string());
    if (!e.nsipv6.is_unspecified() && !container_network_v6.contains(e.nsipv6))
        return fail(Errc::invalid_argument, "nsipv6: " + e.nsipv6.to_string() +
                                                " is outside the IPv6 container network " +
                                                container_network_v6.to_string());
    for (const auto& sip : e.serviceip) {
        if (!service_network.contains(sip.address))
            return fail(Errc::invalid_argument, "serviceip: " + sip.address.to_string() +
                                                    " is outside the service network " +
                                                    service_network.to_string());
        if (!sip.address_v6.is_unspecified() && !service_network_v6.contains(sip.address_v6))
            return fail(Errc::invalid_argument, "serviceip: " + sip.address_v6.to_string() +
                                                    " is outside the IPv6 service network " +
                                                    service_network_v6.to_string());
    }
    return {};
}

}  // namespace nm
