#pragma once
// resolv.conf, both ways: the node's upstream resolvers read from it, and the one written for
// each namespace the agent creates (/etc/netns/<name>/resolv.conf, which `ip netns exec` and
// container runtimes that follow iproute2 bind over /etc/resolv.conf).
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "core/config.hpp"
#include "core/error.hpp"

namespace nm {

// The IPv4 `nameserver` lines of resolv.conf text (IPv6 ones are skipped: the agent forwards
// over IPv4).
std::vector<DnsServerAddress> nameservers(std::string_view text);
// nameservers() of a file; none when it cannot be read.
std::vector<DnsServerAddress> nameservers_of(const std::string& path);

// The resolv.conf of an app namespace: the agent's names server, the job's search domain
// (app.appns.local, so "svc.svcns" resolves), ndots:2 so such a short name tries the search
// domain first.
std::string namespace_resolv_conf(Ipv4 nameserver, std::string_view job);

// Writes /etc/netns/<netns>/resolv.conf (under `root`, "/etc/netns" by default).
Result<void> write_netns_resolv_conf(const std::string& netns, const std::string& text,
                                     const std::string& root = "/etc/netns");
// Removes that file and its folder; missing ones are fine.
void remove_netns_resolv_conf(const std::string& netns, const std::string& root = "/etc/netns");

}  // namespace nm
