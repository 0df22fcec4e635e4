#include "api/request_parsers.hpp"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <cctype>

#include "core/json_fields.hpp"
#include "core/parse.hpp"
#include "env/port_mapping.hpp"
#include "table/table_json.hpp"

namespace nm {

namespace json = boost::json;
using namespace json_fields;

namespace {
constexpr std::string_view body_name = "request body";

// A job name field: present, a string, four valid parts.
Result<std::pair<std::string, JobName>> get_job(const json::object& obj, std::string_view field) {
    auto text = get_string(obj, field);
    if (!text) return tl::unexpected(text.error());
    auto job = parse_job_name(*text);
    if (!job) return bad_field(field, job.error().message);
    return std::pair{*text, *job};
}

Result<std::vector<ServiceIp>> get_service_ips_in(const json::object& obj, std::string_view field,
                                                  const Cidr& service_network) {
    auto sips = get_service_ips(obj, field);
    if (!sips) return tl::unexpected(sips.error());
    for (const auto& sip : *sips)
        if (!service_network.contains(sip.address))
            return bad_field(field, sip.address.to_string() + " is outside the service network " +
                                        service_network.to_string());
    return sips;
}

// A character of a container id or namespace name: [a-zA-Z0-9_.-].
bool is_name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

}  // namespace

Result<void> check_container_id(std::string_view id) {
    if (id.empty() || id.size() > 128 || !std::isalnum(static_cast<unsigned char>(id[0])) ||
        !std::all_of(id.begin(), id.end(), is_name_char))
        return bad_field("containerId",
                         "must be a container id or name ([a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 128 "
                         "characters), got '" +
                             std::string(id) + "'");
    return {};
}

Result<void> check_netns_name(std::string_view name) {
    if (name.empty() || name.size() > 64 || name == "." || name == ".." ||
        !std::all_of(name.begin(), name.end(), is_name_char))
        return bad_field("name",
                         "must be 1..64 characters of [a-zA-Z0-9_.-] (a /run/netns entry), got '" +
                             std::string(name) + "'");
    return {};
}

Result<RegisterRequest> parse_register_body(std::string_view body, const Networks& nets) {
    auto obj = parse_object(body, body_name);
    if (!obj) return tl::unexpected(obj.error());
    RegisterRequest request;
    if (obj->contains("subnetwork")) {  // the seed's form
        auto text = get_string(*obj, "subnetwork");
        if (!text) return tl::unexpected(text.error());
        std::string cidr_text = *text;
        if (cidr_text.find('/') == std::string::npos) cidr_text += "/24";
        auto cidr = Cidr::parse(cidr_text);
        if (!cidr) return bad_field("subnetwork", "not a subnet: '" + excerpt(*text) + "'");
        if (cidr->network.value != (cidr->network.value & cidr->mask()))
            return bad_field("subnetwork", "'" + *text + "' has host bits set");
        if (!nets.container_network.contains(cidr->network) ||
            cidr->prefix < nets.container_network.prefix)
            return bad_field("subnetwork", cidr->to_string() +
                                               " is outside the container network " +
                                               nets.container_network.to_string());
        request.subnetwork = *cidr;
        return request;
    }
    auto id = get_string(*obj, "client_id");
    if (!id) return tl::unexpected(id.error());
    if (id->empty() || id->size() > 128 || !std::all_of(id->begin(), id->end(), [](char c) {
            return c > ' ' && c < 127 && c != '/' && c != '+' && c != '#';
        }))
        return bad_field(
            "client_id",
            "must be 1..128 printable characters without spaces, '/', '+' or '#' (it becomes "
            "an MQTT topic level), got '" +
                excerpt(*id) + "'");
    // Absent, null or "": the agent's ClusterUrl (the node engine before v0.4.302 sends none).
    auto address = get_optional_string(*obj, "cluster_address");
    if (!address) return tl::unexpected(address.error());
    const std::string host = address->value_or("");
    if (host.size() > 253 || !std::all_of(host.begin(), host.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':';
        }))
        return bad_field("cluster_address",
                         "must be a host name or address, got '" + excerpt(host) + "'");
    request.client_id = *id;
    request.cluster_address = host;
    return request;
}

namespace {

// The job (from `job_field`) and instanceNumber every deploy body carries.
Result<void> read_instance(const json::object& obj, std::string_view job_field, DeployRequest& r) {
    auto job = get_job(obj, job_field);
    if (!job) return tl::unexpected(job.error());
    std::tie(r.service_name, r.job) = *job;
    auto number = get_int(obj, "instanceNumber", 0, INT32_MAX);
    if (!number) return tl::unexpected(number.error());
    r.instance_number = static_cast<int>(*number);
    return {};
}

// The optional "portMappings" ("host:container[/proto],..."), checked before it is kept.
Result<void> read_port_mappings(const json::object& obj, DeployRequest& r) {
    auto mappings = get_optional_string(obj, "portMappings");
    if (!mappings) return tl::unexpected(mappings.error());
    if (*mappings) {
        if (auto parsed = parse_port_mappings(**mappings); !parsed)
            return bad_field("portMappings", parsed.error().message);
        r.port_mappings = **mappings;
    }
    return {};
}

}  // namespace

Result<DeployRequest> parse_docker_deploy_body(std::string_view body, const Networks& nets) {
    auto obj = parse_object(body, body_name);
    if (!obj) return tl::unexpected(obj.error());
    DeployRequest r;
    r.kind = DeployKind::docker;
    auto id = get_string(*obj, "containerId");
    if (!id) return tl::unexpected(id.error());
    if (auto ok = check_container_id(*id); !ok) return tl::unexpected(ok.error());
    r.container_id = *id;
    if (auto ok = read_instance(*obj, "appName", r); !ok) return tl::unexpected(ok.error());
    auto node_ip = get_optional_ipv4(*obj, "nodeIp");
    if (!node_ip) return tl::unexpected(node_ip.error());
    r.node_ip = *node_ip;
    auto node_port = get_optional_int(*obj, "nodePort", 1, 65535);
    if (!node_port) return tl::unexpected(node_port.error());
    if (*node_port) r.node_port = static_cast<uint16_t>(**node_port);
    auto sips = get_service_ips_in(*obj, "serviceIp", nets.service_network);
    if (!sips) return tl::unexpected(sips.error());
    r.service_ips = std::move(*sips);
    return r;
}

Result<DeployRequest> parse_container_deploy_body(std::string_view body) {
    auto obj = parse_object(body, body_name);
    if (!obj) return tl::unexpected(obj.error());
    DeployRequest r;
    r.kind = DeployKind::container;
    auto pid = get_int(*obj, "pid", 1, INT32_MAX);
    if (!pid) return tl::unexpected(pid.error());
    r.pid = static_cast<pid_t>(*pid);
    if (auto ok = read_instance(*obj, "serviceName", r); !ok) return tl::unexpected(ok.error());
    if (auto ok = read_port_mappings(*obj, r); !ok) return tl::unexpected(ok.error());
    return r;
}

Result<DeployRequest> parse_unikernel_deploy_body(std::string_view body) {
    auto obj = parse_object(body, body_name);
    if (!obj) return tl::unexpected(obj.error());
    DeployRequest r;
    r.kind = DeployKind::unikernel;
    // The VM is started after its network exists: there is no process to attach yet.
    if (auto pid = get_optional_int(*obj, "pid", INT32_MIN, INT32_MAX); !pid)
        return tl::unexpected(pid.error());
    if (auto ok = read_instance(*obj, "serviceName", r); !ok) return tl::unexpected(ok.error());
    if (auto ok = read_port_mappings(*obj, r); !ok) return tl::unexpected(ok.error());
    return r;
}

Result<DeployRequest> parse_netns_deploy_body(std::string_view body, const Networks& nets) {
    auto obj = parse_object(body, body_name);
    if (!obj) return tl::unexpected(obj.error());
    DeployRequest r;
    r.kind = DeployKind::netns;
    auto name = get_string(*obj, "name");
    if (!name) return tl::unexpected(name.error());
    if (auto ok = check_netns_name(*name); !ok) return tl::unexpected(ok.error());
    r.netns_name = *name;
    if (auto ok = read_instance(*obj, "serviceName", r); !ok) return tl::unexpected(ok.error());
    auto address = get_optional_ipv4(*obj, "nsAddress");
    if (!address) return tl::unexpected(address.error());
    if (*address && !nets.container_network.contains(**address))
        return bad_field("nsAddress", (*address)->to_string() +
                                          " is outside the container network " +
                                          nets.container_network.to_string());
    r.ns_address = *address;
    auto sips = get_service_ips_in(*obj, "serviceIp", nets.service_network);
    if (!sips) return tl::unexpected(sips.error());
    r.service_ips = std::move(*sips);
    if (auto ok = read_port_mappings(*obj, r); !ok) return tl::unexpected(ok.error());
    return r;
}

Result<UndeployRequest> parse_undeploy_body(std::string_view body, DeployKind kind) {
    auto obj = parse_object(body, body_name);
    if (!obj) return tl::unexpected(obj.error());
    UndeployRequest r;
    r.kind = kind;
    auto job = get_job(*obj, "serviceName");
    if (!job) return tl::unexpected(job.error());
    r.service_name = job->first;
    auto number = get_int(*obj, "instanceNumber", 0, INT32_MAX);
    if (!number) return tl::unexpected(number.error());
    r.instance_number = static_cast<int>(*number);
    return r;
}

namespace {
// The entry format is the table file's (table/table_json.hpp); the API adds the network checks.
Result<TableEntry> parse_entry(const json::value& item, size_t index, const Networks& nets) {
    std::string where = "entries[" + std::to_string(index) + "]: ";
    auto e = entry_from_json(item);
    if (!e) return fail(Errc::invalid_argument, where + e.error().message);
    if (auto ok = validate(*e, nets); !ok)
        return fail(Errc::invalid_argument, where + ok.error().message);
    return e;
}
}  // namespace

Result<std::vector<TableEntry>> parse_table_entries_body(std::string_view body,
                                                         const Networks& nets) {
    boost::system::error_code ec;
    json::value value = json::parse(body, ec);
    if (ec) return fail(Errc::invalid_argument, "request body is not valid JSON: " + ec.message());
    const json::array* list = nullptr;
    if (value.is_array()) {
        list = &value.as_array();
    } else if (value.is_object()) {
        auto it = value.as_object().find("entries");
        if (it == value.as_object().end()) return bad_field("entries", "missing");
        if (!it->value().is_array())
            return bad_field("entries",
                             "expected an array, got " + std::string(kind_of(it->value())));
        list = &it->value().as_array();
    } else {
        return fail(Errc::invalid_argument,
                    "request body must be an array of entries or {\"entries\": [...]}, got " +
                        std::string(kind_of(value)));
    }
    if (list->empty()) return bad_field("entries", "must not be empty");
    std::vector<TableEntry> entries;
    for (size_t i = 0; i < list->size(); ++i) {
        auto e = parse_entry((*list)[i], i, nets);
        if (!e) return tl::unexpected(e.error());
        entries.push_back(std::move(*e));
    }
    return entries;
}

Result<TableRemoveRequest> parse_table_remove_query(std::string_view query) {
    TableRemoveRequest r;
    bool have_job = false;
    while (!query.empty()) {
        auto amp = query.find('&');
        auto item = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        auto eq = item.find('=');
        auto key = item.substr(0, eq);
        auto value = eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
        if (key == "job") {
            if (auto job = parse_job_name(value); !job)
                return bad_field("job", job.error().message);
            r.job = std::string(value);
            have_job = true;
        } else if (key == "instance") {
            auto n = parse_whole<int>(value);
            if (!n || *n < 0)
                return bad_field("instance",
                                 "must be an integer >= 0, got '" + std::string(value) + "'");
            r.instance_number = *n;
        } else if (!key.empty()) {
            return fail(Errc::invalid_argument, "unknown query parameter '" + std::string(key) +
                                                    "' (expected job and optionally instance)");
        }
    }
    if (!have_job)
        return fail(Errc::invalid_argument,
                    "query parameter 'job' is missing (DELETE /table?job=a.b.c.d)");
    return r;
}

}  // namespace nm
