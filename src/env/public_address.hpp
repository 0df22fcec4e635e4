#pragma once
// This node's address for tunnel peers (NodePublicAddress, --node-ip).
#include <string>

#include "core/address.hpp"
#include "core/error.hpp"

namespace nm {

// `configured` unless it is 0.0.0.0, else the IPv4 address of the interface that carries the
// default route in the calling thread's network namespace.
Result<Ipv4> node_public_address(const std::string& configured);

}  // namespace nm
