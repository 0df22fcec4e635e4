#include "cluster/cluster_messages.hpp"

#include <arpa/inet.h>

#include <boost/json/serialize.hpp>

#include "cluster/json_fields.hpp"
#include "core/parse.hpp"

namespace nm {

namespace json = boost::json;
using namespace json_fields;

namespace {
// "fc00::100" (gets prefix_v6) or "fc00::100/120": a network base, written back as base/len.
Result<std::string> parse_subnet_v6(const std::string& text, uint8_t prefix_v6) {
    auto bad = [&](const std::string& why) {
        return fail(Errc::invalid_argument, "field \"addressv6\": '" + excerpt(text) + "' " + why);
    };
    std::string address = text;
    unsigned prefix = prefix_v6;
    if (auto slash = text.find('/'); slash != std::string::npos) {
        auto n = parse_whole<unsigned>(std::string_view(text).substr(slash + 1));
        if (!n || *n > 128) return bad("has a bad prefix length");
        prefix = *n;
        address = text.substr(0, slash);
    }
    in6_addr a{};
    if (inet_pton(AF_INET6, address.c_str(), &a) != 1) return bad("is not an IPv6 subnet");
    for (unsigned bit = prefix; bit < 128; ++bit)
        if (a.s6_addr[bit / 8] & (0x80 >> (bit % 8))) return bad("has host bits set");
    return address + "/" + std::to_string(prefix);
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
    SubnetAssignment assignment{*cidr, ""};
    if (*v6 && !(*v6)->empty()) {
        auto subnet_v6 = parse_subnet_v6(**v6, prefix_v6);
        if (!subnet_v6) return tl::unexpected(subnet_v6.error());
        assignment.subnet_v6 = std::move(*subnet_v6);
    }
    return assignment;
}

namespace {
Result<TableEntry> parse_instance(const json::value& item, const JobName& job, size_t index) {
    std::string where = "instance_list[" + std::to_string(index) + "]";
    auto wrap = [&](const Error& e) {
        return fail(Errc::invalid_argument, where + ": " + e.message);
    };
    if (!item.is_object())
        return fail(Errc::invalid_argument,
                    where + ": expected an object, got " + std::string(kind_of(item)));
    const json::object& obj = item.as_object();
    TableEntry entry;
    entry.appname = job.appname;
    entry.appns = job.appns;
    entry.servicename = job.servicename;
    entry.servicenamespace = job.servicenamespace;
    auto number = get_int(obj, "instance_number", 0, INT32_MAX);
    if (!number) return wrap(number.error());
    entry.instancenumber = static_cast<int>(*number);
    auto nsip = get_ipv4(obj, "namespace_ip");
    if (!nsip) return wrap(nsip.error());
    entry.nsip = *nsip;
    auto host = get_ipv4(obj, "host_ip");
    if (!host) return wrap(host.error());
    entry.nodeip = *host;
    auto port = get_int(obj, "host_port", 1, 65535);
    if (!port) return wrap(port.error());
    entry.nodeport = static_cast<uint16_t>(*port);
    auto sips = get_service_ips(obj, "service_ip");
    if (!sips) return wrap(sips.error());
    entry.serviceip = std::move(*sips);
    return entry;
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

    auto list = obj->find("instance_list");
    if (list == obj->end() || list->value().is_null()) return result;
    if (!list->value().is_array())
        return fail(Errc::invalid_argument, "field \"instance_list\": expected an array, got " +
                                                std::string(kind_of(list->value())));
    const json::array& items = list->value().as_array();
    if (items.empty()) return result;
    auto job = parse_job_name(result.app_name);
    if (!job) return fail(Errc::invalid_argument, "field \"app_name\": " + job.error().message);
    for (size_t i = 0; i < items.size(); ++i) {
        auto entry = parse_instance(items[i], *job, i);
        if (!entry) return tl::unexpected(entry.error());
        result.entries.push_back(std::move(*entry));
    }
    return result;
}

std::string tablequery_request_by_ip(Ipv4 address) {
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
