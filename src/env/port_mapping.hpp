#pragma once
// Port mappings of a deployed instance: "host:container[/tcp|/udp];...", or bare "port"
// (protocol.md, /container/deploy).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace nm {

enum class L4Proto : uint8_t { tcp, udp };

struct PortMapping {
    uint16_t host_port = 0;       // on the node's own addresses
    uint16_t container_port = 0;  // on the namespace address
    L4Proto proto = L4Proto::tcp;
    friend bool operator==(const PortMapping&, const PortMapping&) = default;
};

std::string_view to_string(L4Proto proto);
// "8080:80/tcp"
std::string to_string(const PortMapping& mapping);

// Parses "8080:80/tcp;9000/udp" as the reference agent reads it (protocol.md, portMappings):
// items separated by ';', each "host:container" or a bare "port" (host = container), with an
// optional "/tcp" or "/udp" (default tcp). An empty string is no mapping; spaces around items and
// one trailing ';' are accepted too. Ports are 1..65535. A host port given twice for one protocol
// keeps its first mapping (the reference installs both rules and the first matches). Errors
// (Errc::invalid_argument) quote the bad item.
Result<std::vector<PortMapping>> parse_port_mappings(std::string_view text);

}  // namespace nm
