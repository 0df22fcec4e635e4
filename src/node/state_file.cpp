#include "node/state_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/json_fields.hpp"
#include "table/table_json.hpp"

namespace nm {

namespace {

namespace json = boost::json;
using namespace json_fields;

// target = the value of expr, or return its error.
#define NM_SET(target, expr)                                    \
    do {                                                        \
        auto nm_set_r = (expr);                                 \
        if (!nm_set_r) return tl::unexpected(nm_set_r.error()); \
        (target) = std::move(*nm_set_r);                        \
    } while (0)

constexpr const char* state_dir = "/run/netmanager";
constexpr const char* ip_forward_key = "net.ipv4.ip_forward";
constexpr const char* ipv6_forward_key = "net.ipv6.conf.all.forwarding";

struct KindName {
    DeployKind kind;
    const char* name;
};
constexpr KindName kind_names[] = {{DeployKind::docker, "docker"},
                                   {DeployKind::container, "container"},
                                   {DeployKind::netns, "netns"},
                                   {DeployKind::unikernel, "unikernel"}};

const char* kind_name(DeployKind kind) {
    for (const auto& k : kind_names)
        if (k.kind == kind) return k.name;
    return "container";
}

std::string ports_text(const std::vector<PortMapping>& ports) {
    std::string text;
    for (const PortMapping& p : ports) text += (text.empty() ? "" : ";") + to_string(p);
    return text;
}

json::object instance_to_json(const InstanceRecord& i) {
    const Attachment& a = i.attachment;
    json::object o{{"job", i.job},
                   {"instance_number", i.instance_number},
                   {"kind", kind_name(i.kind)},
                   {"netns", a.netns},
                   {"pid", a.pid},
                   {"netns_inode", a.netns_inode},
                   {"host_link", a.host_link},
                   {"inner_link", a.inner_link},
                   {"address", a.address.to_string()},
                   {"prefix", a.prefix},
                   {"ports", ports_text(a.ports)},
                   {"entry", to_json(i.entry)}};
    if (a.address_v6) {
        o["address_v6"] = a.address_v6->to_string();
        o["prefix_v6"] = a.prefix_v6;
    }
    return o;
}

// A parse error of a text field, named: field "subnet": <message>.
template <class T>
Result<T> parsed(std::string_view field, Result<T> value) {
    if (!value) return bad_field(field, value.error().message);
    return value;
}

Result<InstanceRecord> instance_from_json(const json::value& value) {
    if (!value.is_object()) return fail(Errc::invalid_argument, "not an object");
    const json::object& o = value.as_object();
    InstanceRecord i;
    Attachment& a = i.attachment;
    NM_SET(i.job, get_string(o, "job"));
    int64_t number = 0;
    NM_SET(number, get_int(o, "instance_number", 0, INT32_MAX));
    i.instance_number = static_cast<int>(number);
    std::string kind;
    NM_SET(kind, get_string(o, "kind"));
    bool known = false;
    for (const auto& k : kind_names)
        if (kind == k.name) {
            i.kind = k.kind;
            known = true;
        }
    if (!known) return bad_field("kind", "unknown kind \"" + kind + "\"");
    NM_SET(a.netns, get_string(o, "netns"));
    int64_t pid = 0;
    NM_SET(pid, get_int(o, "pid", 0, INT32_MAX));
    a.pid = static_cast<int>(pid);
    int64_t inode = 0;
    NM_SET(inode, get_int(o, "netns_inode", 0, INT64_MAX));
    a.netns_inode = static_cast<uint64_t>(inode);
    if (a.netns.empty() == (a.pid == 0))
        return fail(Errc::invalid_argument, "exactly one of netns and pid must be given");
    NM_SET(a.host_link, get_string(o, "host_link"));
    NM_SET(a.inner_link, get_string(o, "inner_link"));
    if (a.host_link.empty() || a.inner_link.empty())
        return fail(Errc::invalid_argument, "host_link and inner_link must not be empty");
    NM_SET(a.address, get_ipv4(o, "address"));
    int64_t prefix = 0;
    NM_SET(prefix, get_int(o, "prefix", 8, 30));
    a.prefix = static_cast<uint8_t>(prefix);
    std::optional<std::string> v6;
    NM_SET(v6, get_optional_string(o, "address_v6"));
    if (v6) {
        NM_SET(a.address_v6, parsed("address_v6", Ipv6::parse(*v6)));
        int64_t prefix6 = 0;
        NM_SET(prefix6, get_int(o, "prefix_v6", 64, 126));
        a.prefix_v6 = static_cast<uint8_t>(prefix6);
    }
    std::string ports;
    NM_SET(ports, get_string(o, "ports"));
    NM_SET(a.ports, parsed("ports", parse_port_mappings(ports)));
    const json::value* entry = nullptr;
    NM_SET(entry, get_present(o, "entry"));
    NM_SET(i.entry, parsed("entry", entry_from_json(*entry)));
    return i;
}

}  // namespace

std::string state_file_path(const std::string& prefix) {
    return std::string(state_dir) + "/state-" + prefix + ".json";
}

std::string state_to_text(const NodeState& state) {
    json::object sysctls;
    if (state.ip_forward) sysctls[ip_forward_key] = *state.ip_forward;
    if (state.ipv6_forward) sysctls[ipv6_forward_key] = *state.ipv6_forward;
    json::array instances;
    for (const InstanceRecord& i : state.instances) instances.push_back(instance_to_json(i));
    json::object o{{"version", NodeState::version},      {"prefix", state.prefix},
                   {"subnet", state.subnet.to_string()}, {"client_id", state.client_id},
                   {"cluster_host", state.cluster_host}, {"sysctls", std::move(sysctls)},
                   {"instances", std::move(instances)}};
    if (state.subnet_v6) o["subnet_v6"] = state.subnet_v6->to_string();
    return json::serialize(o) + "\n";
}

Result<NodeState> state_from_text(std::string_view text) {
    json::object o;
    NM_SET(o, parse_object(text, "state file"));
    int64_t version = 0;
    NM_SET(version, get_int(o, "version", 0, INT32_MAX));
    if (version != NodeState::version)
        return fail(Errc::invalid_argument, "state file version " + std::to_string(version) +
                                                " is not the one this agent reads (" +
                                                std::to_string(NodeState::version) + ")");
    NodeState s;
    NM_SET(s.prefix, get_string(o, "prefix"));
    std::string subnet;
    NM_SET(subnet, get_string(o, "subnet"));
    NM_SET(s.subnet, parsed("subnet", Cidr::parse(subnet)));
    std::optional<std::string> subnet_v6;
    NM_SET(subnet_v6, get_optional_string(o, "subnet_v6"));
    if (subnet_v6) NM_SET(s.subnet_v6, parsed("subnet_v6", Cidr6::parse(*subnet_v6)));
    NM_SET(s.client_id, get_string(o, "client_id"));
    NM_SET(s.cluster_host, get_string(o, "cluster_host"));
    const json::value* sysctls = nullptr;
    NM_SET(sysctls, get_present(o, "sysctls"));
    if (!sysctls->is_object()) return bad_field("sysctls", "expected " + std::string("an object"));
    NM_SET(s.ip_forward, get_optional_string(sysctls->as_object(), ip_forward_key));
    NM_SET(s.ipv6_forward, get_optional_string(sysctls->as_object(), ipv6_forward_key));
    const json::value* instances = nullptr;
    NM_SET(instances, get_present(o, "instances"));
    if (!instances->is_array()) return bad_field("instances", "expected an array");
    size_t n = 0;
    for (const json::value& v : instances->as_array()) {
        auto i = instance_from_json(v);
        if (!i)
            return fail(Errc::invalid_argument,
                        "instance " + std::to_string(n) + ": " + i.error().message);
        s.instances.push_back(std::move(*i));
        ++n;
    }
    return s;
}

Result<void> write_state_file(const std::string& path, const NodeState& state) {
    const auto slash = path.rfind('/');
    if (slash != std::string::npos && slash > 0)
        if (::mkdir(path.substr(0, slash).c_str(), 0700) != 0 && errno != EEXIST)
            return fail(Errc::system,
                        "state file: mkdir " + path.substr(0, slash) + ": " + std::strerror(errno));
    const std::string tmp = path + ".tmp";
    const std::string text = state_to_text(state);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return fail(Errc::system, "state file: open " + tmp + ": " + std::strerror(errno));
    size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            return fail(Errc::system, "state file: write " + tmp + ": " + std::strerror(e));
        }
        done += static_cast<size_t>(n);
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        return fail(Errc::system, "state file: rename " + tmp + ": " + std::strerror(e));
    }
    return {};
}

Result<std::optional<NodeState>> read_state_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        if (errno == ENOENT) return std::optional<NodeState>{};
        return fail(Errc::system, path + ": " + std::strerror(errno));
    }
    std::stringstream text;
    text << in.rdbuf();
    auto state = state_from_text(text.str());
    if (!state) return fail(state.error().code, path + ": " + state.error().message);
    return std::optional<NodeState>(std::move(*state));
}

void remove_state_file(const std::string& path) {
    ::unlink(path.c_str());
    ::unlink((path + ".tmp").c_str());
}

}  // namespace nm
