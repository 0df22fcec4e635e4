#include "cluster/cluster_messages.hpp"

#include <boost/json/serialize.hpp>

#include "core/json_fields.hpp"
#include "core/parse.hpp"

namespace nm {

namespace json = boost::json;
using namespace json_fields;

namespace {
// "fc00::100" (gets prefix_v6) or "fc00::100/120": a network base.
Result<Cidr6> parse_subnet_v6(const std::string& text, uint8_t prefix_v6) {
    auto bad = [&](const std::string& why) {
        return fail(Errc::invalid_argument, "field \"addressv6\": '" + excerpt(text) + "' " + why);
    };
    auto subnet = Cidr6::parse(
        text.find('/') == std::string::npos ? text + "/" + std::to_string(prefix_v6) : text);
    if (!subnet) return bad("is not an IPv6 subnet");
    if (subnet->host(0) != subnet->network) return bad("has host bits set");
    return *subnet;
}
}  // namespace

Result<SubnetAssignment> parse_subnetwork_result(std::string_view payload, uint8_t prefix,
                                                 uint8_t prefix_v6) {
    auto obj = parse_object(payload, "subnetwork/result payload");
    if (!obj) return tl::unexpected(obj.error());
    auto address = get_string(*obj, "address");
    if (!address) return tl::unexpected(address.error());
    auto v6 = get_optional_string(*obj, "addressv6");
    if (!v6) return tl::unexpected(v6.error());
    std::string text = *address;
    if (text.find('/') == std::string::npos) text += "/" + std::to_string(prefix);
    auto cidr = Cidr::parse(text);
    if (!cidr)
        return fail(Errc::invalid_argument,
                    "field \"address\": not a subnet: '" + excerpt(*address) + "'");
    if (cidr->network.value != (cidr->network.value & cidr->mask()))
        return fail(Errc::invalid_argument, "field \"address\": '" + excerpt(*address) +
                                                "' has host bits set for a /" +
                                                std::to_string(cidr->prefix));
    SubnetAssignment assignment{*cidr, std::nullopt};
    if (*v6 && !(*v6)->empty()) {
        auto subnet_v6 = parse_subnet_v6(**v6, prefix_v6);
        if (!subnet_v6) return tl::unexpected(subnet_v6.error());
        assignment.subnet_v6 = *subnet_v6;
    }
    return assignment;
}

IpType ip_type_as_reference(std::string_view type) {
    if (type == "RR") return IpType::RR;
    if (type == "Closest") return IpType::Closest;
    return IpType::InstanceNumber;
}

namespace {
// The value of `field`, or null when it is absent.
const json::value& field_or_null(const json::object& obj, std::string_view field) {
    static const json::value null_value;
    auto it = obj.find(field);
    return it == obj.end() ? null_value : it->value();
}

// host_port: an integer, or a string of digits (the Go agent writes it as a string elsewhere).
Result<uint16_t> read_port(const json::value& value) {
    std::optional<int64_t> n;
    if (value.is_int64()) n = value.as_int64();
    if (value.is_uint64() && value.as_uint64() <= 65535)
        n = static_cast<int64_t>(value.as_uint64());
    if (value.is_string()) n = parse_whole<int64_t>(std::string_view(value.as_string()));
    if (!n)
        return fail(Errc::invalid_argument,
                    "field \"host_port\": expected a port number, got " +
                        (value.is_string() ? "'" + excerpt(value.as_string()) + "'"
                                           : std::string(kind_of(value))));
    if (*n < 1 || *n > 65535)
        return fail(Errc::invalid_argument,
                    "field \"host_port\": must be 1..65535, got " + std::to_string(*n));
    return static_cast<uint16_t>(*n);
}

// An optional IPv6 address as the cluster writes it: absent, null, "" or unparsable is none
// (the reference's net.ParseIP gives nil for all of them).
Ipv6 optional_ipv6(const json::value& value) {
    if (!value.is_string()) return Ipv6{};
    return Ipv6::parse(std::string_view(value.as_string())).value_or(Ipv6{});
}

// One service_ip element; nullopt when it carries no IPv4 address (that element is skipped).
std::optional<ServiceIp> read_service_ip(const json::value& item) {
    if (!item.is_object()) return std::nullopt;
    const json::object& obj = item.as_object();
    const json::value& address = field_or_null(obj, "Address");
    if (!address.is_string()) return std::nullopt;
    auto ip = Ipv4::parse(std::string_view(address.as_string()));
    if (!ip) return std::nullopt;
    const json::value& type = field_or_null(obj, "IpType");
    return ServiceIp{
        ip_type_as_reference(type.is_string() ? std::string_view(type.as_string()) : ""), *ip,
        optional_ipv6(field_or_null(obj, "Address_v6"))};
}

// namespace_ip_v6: "" is an instance without IPv6 (an agent that has none publishes that);
// anything else must be an IPv6 address.
Result<Ipv6> read_nsipv6(const json::value& value) {
    if (!value.is_string())
        return fail(Errc::invalid_argument, "field \"namespace_ip_v6\": expected a string, got " +
                                                std::string(kind_of(value)));
    std::string_view text(value.as_string());
    if (text.empty()) return Ipv6{};
    auto ip = Ipv6::parse(text);
    if (!ip)
        return fail(Errc::invalid_argument, "field \"namespace_ip_v6\": " + ip.error().message);
    return *ip;
}

// One instance: nullopt when it is pending (not yet running), an error when a value is bad.
Result<std::optional<TableEntry>> parse_instance(const json::value& item, const JobName& job) {
    if (!item.is_object())
        return fail(Errc::invalid_argument,
                    "expected an object, got " + std::string(kind_of(item)));
    const json::object& obj = item.as_object();
    auto number = get_int(obj, "instance_number", 0, INT32_MAX);
    if (!number) return tl::unexpected(number.error());
    for (std::string_view field : {"namespace_ip", "namespace_ip_v6", "host_ip", "host_port"})
        if (field_or_null(obj, field).is_null()) return std::optional<TableEntry>{};
    TableEntry entry;
    entry.appname = job.appname;
    entry.appns = job.appns;
    entry.servicename = job.servicename;
    entry.servicenamespace = job.servicenamespace;
    entry.instancenumber = static_cast<int>(*number);
    auto nsip = get_ipv4(obj, "namespace_ip");
    if (!nsip) return tl::unexpected(nsip.error());
    entry.nsip = *nsip;
    auto nsipv6 = read_nsipv6(field_or_null(obj, "namespace_ip_v6"));
    if (!nsipv6) return tl::unexpected(nsipv6.error());
    entry.nsipv6 = *nsipv6;
    auto host = get_ipv4(obj, "host_ip");
    if (!host) return tl::unexpected(host.error());
    entry.nodeip = *host;
    auto port = read_port(field_or_null(obj, "host_port"));
    if (!port) return tl::unexpected(port.error());
    entry.nodeport = *port;
    const json::value& sips = field_or_null(obj, "service_ip");
    if (sips.is_array())
        for (const json::value& sip : sips.as_array())
            if (auto parsed = read_service_ip(sip)) entry.serviceip.push_back(*parsed);
    return std::optional<TableEntry>{std::move(entry)};
}
}  // namespace

Result<TableQueryResult> parse_tablequery_result(std::string_view payload) {
    auto obj = parse_object(payload, "tablequery/result payload");
    if (!obj) return tl::unexpected(obj.error());
    TableQueryResult result;
    auto app = get_optional_string(*obj, "app_name");
    if (!app) return tl::unexpected(app.error());
    result.app_name = app->value_or("");
    auto key = get_optional_string(*obj, "query_key");
    if (!key) return tl::unexpected(key.error());
    result.query_key = key->value_or("");

    // The job: app_name, else the key of a by-name query (a by-address key, "10.30.0.7", also
    // has four dot-separated parts).
    std::optional<JobName> job;
    for (const std::string& name : {result.app_name, result.query_key}) {
        if (name.empty() || job || Ipv4::parse(name)) continue;
        if (auto parsed = parse_job_name(name)) {
            job = *parsed;
            result.job = name;
        }
    }

    const json::value& list = field_or_null(*obj, "instance_list");
    if (list.is_null()) return result;
    if (!list.is_array())
        return fail(Errc::invalid_argument, "field \"instance_list\": expected an array, got " +
                                                std::string(kind_of(list)));
    const json::array& items = list.as_array();
    if (items.empty()) return result;
    if (!job)
        return fail(Errc::invalid_argument,
                    "field \"app_name\": '" + excerpt(result.app_name) +
                        "' is no job name (four dot-separated parts), and neither is "
                        "query_key '" +
                        excerpt(result.query_key) + "'");
    for (size_t i = 0; i < items.size(); ++i) {
        auto entry = parse_instance(items[i], *job);
        if (!entry) {
            result.invalid.push_back("instance_list[" + std::to_string(i) +
                                     "]: " + entry.error().message);
        } else if (!*entry) {
            ++result.pending;
        } else {
            result.entries.push_back(std::move(**entry));
        }
    }
    return result;
}

std::string tablequery_request_by_ip(Ipv4 address) {
    return json::serialize(json::object{{"sname", ""}, {"sip", address.to_string()}});
}

std::string tablequery_request_by_ip(const Ipv6& address) {
    return json::serialize(json::object{{"sname", ""}, {"sip", address.to_string()}});
}

std::string tablequery_request_by_name(std::string_view job) {
    return json::serialize(json::object{{"sname", job}, {"sip", ""}});
}

std::string to_payload(const DeployedNotice& n) {
    return json::serialize(json::object{{"appname", n.appname},
                                        {"status", n.status},
                                        {"instance_number", n.instance_number},
                                        {"nsip", n.nsip.to_string()},
                                        {"nsipv6", n.nsipv6},
                                        {"host_ip", n.host_ip.to_string()},
                                        {"host_port", n.host_port}});
}

std::string subnet_request_payload() {
    return json::serialize(json::object{{"METHOD", "GET"}});
}

std::string undeployed_payload(std::string_view job, int instance_number) {
    return json::serialize(json::object{{"appname", job}, {"instance_number", instance_number}});
}

std::string address_changed_payload(std::string_view job, int instance_number, Ipv4 host_ip,
                                    uint16_t host_port) {
    return json::serialize(json::object{{"appname", job},
                                        {"instance_number", instance_number},
                                        {"host_ip", host_ip.to_string()},
                                        {"host_port", host_port}});
}

std::string interest_remove_payload(std::string_view job) {
    return json::serialize(json::object{{"appname", job}});
}

}  // namespace nm
