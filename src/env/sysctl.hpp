#pragma once
// Kernel settings of the calling thread's network namespace, through /proc/sys.
#include <string>

#include "core/error.hpp"

namespace nm {

// key as sysctl spells it: "net.ipv4.ip_forward", "net.ipv4.conf.goProxyTun.rp_filter".
// (Interface names keep their dots: only the fixed part before the name is split.)
Result<std::string> read_sysctl(const std::string& key);
Result<void> write_sysctl(const std::string& key, const std::string& value);

// The rp_filter key of one interface.
std::string rp_filter_key(const std::string& ifname);

}  // namespace nm
