#pragma once
// Table entries for the packet-core tests.
#include <initializer_list>
#include <utility>

#include "table/entry.hpp"
#include "test_packet_builder.hpp"

namespace nm::test {

// entry("app", 1, "172.19.1.2", "10.0.0.1", {{IpType::RR, "172.30.0.4"}, ...}); job app.ns.svc.ns
inline TableEntry entry(const char* app, int instance, const char* nsip, const char* node,
                        std::initializer_list<std::pair<IpType, const char*>> sips,
                        uint16_t port = 50103) {
    TableEntry e;
    e.appname = app;
    e.appns = "ns";
    e.servicename = "svc";
    e.servicenamespace = "ns";
    e.instancenumber = instance;
    e.nodeip = ip(node);
    e.nodeport = port;
    e.nsip = ip(nsip);
    for (auto [type, address] : sips) e.serviceip.push_back(ServiceIp{type, ip(address)});
    return e;
}

// Gives an entry its IPv6 addresses: nsipv6, and each ServiceIP's Address_v6 in order.
inline TableEntry with_v6(TableEntry e, const char* nsipv6,
                          std::initializer_list<const char*> sips_v6) {
    e.nsipv6 = ip6(nsipv6);
    size_t i = 0;
    for (const char* address : sips_v6) e.serviceip.at(i++).address_v6 = ip6(address);
    return e;
}

}  // namespace nm::test
