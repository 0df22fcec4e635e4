#include "env/port_mapping.hpp"

#include <set>
#include <utility>

#include "core/parse.hpp"

namespace nm {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool parse_port(std::string_view text, uint16_t& out) {
    if (text.starts_with('+'))
        text.remove_prefix(1);  // Go's Atoi, the reference's parser, takes it
    auto port = parse_whole<uint16_t>(text);
    if (!port || *port == 0) return false;
    out = *port;
    return true;
}

// Removes every occurrence of `what`; true if there was one.
bool erase_all(std::string& text, std::string_view what) {
    bool found = false;
    for (size_t at; (at = text.find(what)) != std::string::npos; found = true)
        text.erase(at, what.size());
    return found;
}

// As the reference reads an item: "/udp" anywhere makes it UDP, "/tcp" is dropped, then
// "host:container" or a bare "port" (host = container); parts after a second ':' are ignored.
Result<PortMapping> parse_item(std::string_view item) {
    auto bad = [&](std::string_view why) {
        return fail(Errc::invalid_argument,
                    "port mapping \"" + std::string(item) + "\": " + std::string(why) +
                        " (expected host:container or port, then /tcp or /udp)");
    };
    PortMapping m;
    std::string ports(item);
    if (erase_all(ports, "/udp"))
        m.proto = L4Proto::udp;
    else
        erase_all(ports, "/tcp");
    std::string_view text = ports;
    auto colon = text.find(':');
    std::string_view host = text.substr(0, colon);
    std::string_view container = host;
    if (colon != std::string_view::npos)
        container = text.substr(colon + 1, text.find(':', colon + 1) - colon - 1);
    if (!parse_port(host, m.host_port)) return bad("host port must be 1..65535");
    if (!parse_port(container, m.container_port)) return bad("container port must be 1..65535");
    return m;
}

}  // namespace

std::string_view to_string(L4Proto proto) {
    return proto == L4Proto::tcp ? "tcp" : "udp";
}

std::string to_string(const PortMapping& m) {
    return std::to_string(m.host_port) + ":" + std::to_string(m.container_port) + "/" +
           std::string(to_string(m.proto));
}

Result<std::vector<PortMapping>> parse_port_mappings(std::string_view text) {
    std::vector<PortMapping> out;
    std::set<std::pair<L4Proto, uint16_t>> host_ports;
    if (trim(text).empty()) return out;
    std::string_view rest = text;
    while (!rest.empty()) {
        auto semi = rest.find(';');
        std::string_view item = trim(rest.substr(0, semi));
        rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
        bool last = semi == std::string_view::npos || trim(rest).empty();
        if (item.empty()) {
            if (last && !out.empty()) break;  // one trailing ';'
            return fail(Errc::invalid_argument,
                        "port mappings \"" + std::string(text) + "\": empty item");
        }
        auto m = parse_item(item);
        if (!m) return tl::unexpected(m.error());
        // The reference appends one DNAT rule per item, so the first of a host port wins.
        if (!host_ports.emplace(m->proto, m->host_port).second) continue;
        out.push_back(*m);
    }
    return out;
}

}  // namespace nm
