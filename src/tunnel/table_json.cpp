#include "tunnel/table_json.hpp"

#include <boost/json.hpp>

namespace nm {

namespace json = boost::json;

json::value to_json(const TableEntry& e) {
    json::array sips;
    for (const auto& sip : e.serviceip)
        sips.push_back(
            json::object{{"IpType", to_string(sip.type)}, {"Address", sip.address.to_string()}});
    return json::object{{"appname", e.appname},
                        {"appns", e.appns},
                        {"servicename", e.servicename},
                        {"servicenamespace", e.servicenamespace},
                        {"instancenumber", e.instancenumber},
                        {"nodeip", e.nodeip.to_string()},
                        {"nodeport", static_cast<int64_t>(e.nodeport)},
                        {"nsip", e.nsip.to_string()},
                        {"serviceip", std::move(sips)}};
}

json::value to_json(const std::vector<TableEntry>& entries) {
    json::array out;
    for (const auto& e : entries) out.push_back(to_json(e));
    return out;
}

namespace {

tl::unexpected<Error> bad(std::string_view field, std::string what) {
    return fail(Errc::invalid_argument, std::string(field) + ": " + std::move(what));
}

Result<const json::value*> member(const json::object& o, std::string_view field) {
    auto* v = o.if_contains(field);
    if (!v) return bad(field, "missing");
    return v;
}

Result<std::string> string_field(const json::object& o, std::string_view field) {
    auto v = member(o, field);
    if (!v) return tl::unexpected(v.error());
    if (!(*v)->is_string()) return bad(field, "must be a string, got " + json::serialize(**v));
    return std::string((*v)->get_string());
}

Result<int64_t> integer_field(const json::object& o, std::string_view field, int64_t lo,
                              int64_t hi) {
    auto v = member(o, field);
    if (!v) return tl::unexpected(v.error());
    auto range = "must be an integer " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " +
                 json::serialize(**v);
    int64_t n;
    if ((*v)->is_int64())
        n = (*v)->get_int64();
    else if ((*v)->is_uint64() && (*v)->get_uint64() <= uint64_t(INT64_MAX))
        n = int64_t((*v)->get_uint64());
    else
        return bad(field, range);
    if (n < lo || n > hi) return bad(field, range);
    return n;
}

Result<Ipv4> address_field(const json::object& o, std::string_view field) {
    auto s = string_field(o, field);
    if (!s) return tl::unexpected(s.error());
    auto ip = Ipv4::parse(*s);
    if (!ip) return bad(field, ip.error().message);
    return *ip;
}

}  // namespace

Result<TableEntry> entry_from_json(const json::value& value) {
    const auto* o = value.if_object();
    if (!o) return fail(Errc::invalid_argument, "an entry must be a JSON object");
    TableEntry e;
    for (auto [field, target] : {std::pair<std::string_view, std::string*>{"appname", &e.appname},
                                 {"appns", &e.appns},
                                 {"servicename", &e.servicename},
                                 {"servicenamespace", &e.servicenamespace}}) {
        auto s = string_field(*o, field);
        if (!s) return tl::unexpected(s.error());
        *target = std::move(*s);
    }
    auto instance = integer_field(*o, "instancenumber", 0, INT32_MAX);
    if (!instance) return tl::unexpected(instance.error());
    e.instancenumber = static_cast<int>(*instance);
    auto nodeip = address_field(*o, "nodeip");
    if (!nodeip) return tl::unexpected(nodeip.error());
    e.nodeip = *nodeip;
    auto nodeport = integer_field(*o, "nodeport", 1, 65535);
    if (!nodeport) return tl::unexpected(nodeport.error());
    e.nodeport = static_cast<uint16_t>(*nodeport);
    auto nsip = address_field(*o, "nsip");
    if (!nsip) return tl::unexpected(nsip.error());
    e.nsip = *nsip;

    auto sips = member(*o, "serviceip");
    if (!sips) return tl::unexpected(sips.error());
    const auto* list = (*sips)->if_array();
    if (!list) return bad("serviceip", "must be a list of {\"IpType\", \"Address\"}");
    for (size_t i = 0; i < list->size(); ++i) {
        auto where = "serviceip[" + std::to_string(i) + "]";
        const auto* item = (*list)[i].if_object();
        if (!item) return bad(where, "must be an object {\"IpType\", \"Address\"}");
        auto type_text = string_field(*item, "IpType");
        if (!type_text) return bad(where, type_text.error().message);
        auto type = parse_ip_type(*type_text);
        if (!type) return bad(where, type.error().message);
        auto address = address_field(*item, "Address");
        if (!address) return bad(where, address.error().message);
        e.serviceip.push_back(ServiceIp{*type, *address});
    }
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
