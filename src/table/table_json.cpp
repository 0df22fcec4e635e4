#include "table/table_json.hpp"

#include <boost/json.hpp>

#include "core/json_fields.hpp"

namespace nm {

namespace json = boost::json;

namespace {

// An optional IPv6 address as the wire has it: "" when there is none.
std::string optional_text(const Ipv6& ip) {
    return ip.is_unspecified() ? std::string() : ip.to_string();
}

// An optional IPv6 address: absent, null or "" is none (::).
Result<Ipv6> get_optional_ipv6(const json::object& obj, std::string_view field) {
    auto text = json_fields::get_optional_string(obj, field);
    if (!text) return tl::unexpected(text.error());
    if (!*text || (*text)->empty()) return Ipv6{};
    auto ip = Ipv6::parse(**text);
    if (!ip) return json_fields::bad_field(field, ip.error().message);
    return *ip;
}

}  // namespace

json::value to_json(const TableEntry& e) {
    json::array sips;
    for (const auto& sip : e.serviceip)
        sips.push_back(json::object{{"IpType", to_string(sip.type)},
                                    {"Address", sip.address.to_string()},
                                    {"Address_v6", optional_text(sip.address_v6)}});
    return json::object{{"appname", e.appname},
                        {"appns", e.appns},
                        {"servicename", e.servicename},
                        {"servicenamespace", e.servicenamespace},
                        {"instancenumber", e.instancenumber},
                        {"nodeip", e.nodeip.to_string()},
                        {"nodeport", static_cast<int64_t>(e.nodeport)},
                        {"nsip", e.nsip.to_string()},
                        {"nsipv6", optional_text(e.nsipv6)},
                        {"serviceip", std::move(sips)}};
}

json::value to_json(const std::vector<TableEntry>& entries) {
    json::array out;
    for (const auto& e : entries) out.push_back(to_json(e));
    return out;
}

Result<std::vector<ServiceIp>> json_fields::get_service_ips(const json::object& obj,
                                                            std::string_view field) {
    using namespace json_fields;
    std::vector<ServiceIp> out;
    auto it = obj.find(field);
    if (it == obj.end() || it->value().is_null()) return out;
    if (!it->value().is_array())
        return bad_field(field, "expected an array of {IpType, Address}, got " +
                                    std::string(kind_of(it->value())));
    size_t index = 0;
    for (const json::value& item : it->value().as_array()) {
        std::string where = std::string(field) + "[" + std::to_string(index++) + "]";
        if (!item.is_object())
            return bad_field(where, "expected an object, got " + std::string(kind_of(item)));
        auto type_text = get_string(item.as_object(), "IpType");
        if (!type_text) return bad_field(where, type_text.error().message);
        auto type = parse_ip_type(*type_text);
        if (!type) return bad_field(where, type.error().message);
        auto address = get_ipv4(item.as_object(), "Address");
        if (!address) return bad_field(where, address.error().message);
        auto address_v6 = get_optional_ipv6(item.as_object(), "Address_v6");
        if (!address_v6) return bad_field(where, address_v6.error().message);
        out.push_back(ServiceIp{*type, *address, *address_v6});
    }
    return out;
}

Result<TableEntry> entry_from_json(const json::value& value) {
    using namespace json_fields;
    const auto* o = value.if_object();
    if (!o) return fail(Errc::invalid_argument, "an entry must be a JSON object");
    TableEntry e;
    for (auto [field, target] : {std::pair<std::string_view, std::string*>{"appname", &e.appname},
                                 {"appns", &e.appns},
                                 {"servicename", &e.servicename},
                                 {"servicenamespace", &e.servicenamespace}}) {
        auto s = get_string(*o, field);
        if (!s) return tl::unexpected(s.error());
        *target = std::move(*s);
    }
    auto instance = get_int(*o, "instancenumber", 0, INT32_MAX);
    if (!instance) return tl::unexpected(instance.error());
    e.instancenumber = static_cast<int>(*instance);
    auto nodeip = get_ipv4(*o, "nodeip");
    if (!nodeip) return tl::unexpected(nodeip.error());
    e.nodeip = *nodeip;
    auto nodeport = get_int(*o, "nodeport", 1, 65535);
    if (!nodeport) return tl::unexpected(nodeport.error());
    e.nodeport = static_cast<uint16_t>(*nodeport);
    auto nsip = get_ipv4(*o, "nsip");
    if (!nsip) return tl::unexpected(nsip.error());
    e.nsip = *nsip;
    auto nsipv6 = get_optional_ipv6(*o, "nsipv6");
    if (!nsipv6) return tl::unexpected(nsipv6.error());
    e.nsipv6 = *nsipv6;
    // A table entry always lists its ServiceIPs, if only as [].
    if (auto present = get_present(*o, "serviceip"); !present)
        return tl::unexpected(present.error());
    auto sips = get_service_ips(*o, "serviceip");
    if (!sips) return tl::unexpected(sips.error());
    e.serviceip = std::move(*sips);
    return e;
}
Result<std::vector<TableEntry>> entries_from_json(const json::value& value) {
    std::vector<TableEntry> out;
    if (value.is_object()) {
        auto e = entry_from_json(value);
        if (!e) return tl::unexpected(e.error());
        out.push_back(std::move(*e));
        return out;
    }
    const auto* list = value.if_array();
    if (!list) return fail(Errc::invalid_argument, "table: must be a list of entries");
    for (size_t i = 0; i < list->size(); ++i) {
        auto e = entry_from_json((*list)[i]);
        if (!e)
            return fail(Errc::invalid_argument,
                        "entry " + std::to_string(i + 1) + ": " + e.error().message);
        out.push_back(std::move(*e));
    }
    return out;
}

}  // namespace nm
