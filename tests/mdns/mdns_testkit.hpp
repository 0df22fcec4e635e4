#pragma once
// Shared by the names tests: table entries and DNS queries built with libldns.
#include <cstdlib>
#include <string>
#include <vector>

#include "mdns/ldns.hpp"
#include "table/entry.hpp"

namespace nm::testkit {

inline Ipv4 ip(const char* text) {
    return *Ipv4::parse(text);
}

// Instance `n` of App.ns.Web.default (the job's own spelling has upper case).
inline TableEntry web(int n, const char* rr = "10.30.0.1", const char* closest = "10.30.0.2") {
    TableEntry e;
    e.appname = "App";
    e.appns = "ns";
    e.servicename = "Web";
    e.servicenamespace = "default";
    e.instancenumber = n;
    e.nodeip = ip("10.250.0.1");
    e.nodeport = 50103;
    e.nsip = Ipv4{ip("10.18.1.10").value + static_cast<uint32_t>(n)};
    e.serviceip = {
        {IpType::RR, ip(rr)},
        {IpType::Closest, ip(closest)},
        {IpType::InstanceNumber, Ipv4{ip("10.30.1.0").value + static_cast<uint32_t>(n)}}};
    return e;
}

// The same with IPv6 ServiceIPs: RR fdff:2000::1, instance n fdff::1:<n> (Closest has none).
inline TableEntry web6(int n) {
    TableEntry e = web(n);
    e.serviceip[0].address_v6 = *Ipv6::parse("fdff:2000::1");
    e.serviceip[2].address_v6 = *Ipv6::parse("fdff::1:" + std::to_string(n));
    return e;
}

// A query in wire form, as a stub resolver sends it.
inline std::vector<uint8_t> query_wire(const std::string& name, uint16_t type = LDNS_RR_TYPE_A,
                                       uint16_t id = 0x1234, uint16_t qclass = LDNS_RR_CLASS_IN) {
    ldns_pkt* p =
        ldns_pkt_query_new(ldns_dname_new_frm_str(name.c_str()), static_cast<ldns_rr_type>(type),
                           static_cast<ldns_rr_class>(qclass), LDNS_RD);
    ldns_pkt_set_id(p, id);
    uint8_t* wire = nullptr;
    size_t size = 0;
    ldns_pkt2wire(&wire, p, &size);
    std::vector<uint8_t> out(wire, wire + size);
    std::free(wire);
    ldns_pkt_free(p);
    return out;
}

// A reply read back: rcode, id and the A records' owner and addresses.
struct Answer {
    int rcode = -1;
    uint16_t id = 0;
    bool aa = false;
    std::vector<std::string> owners;
    std::vector<std::string> addresses;
    uint32_t ttl = 0;
    uint16_t rclass = 0;  // of the last answer record
    size_t questions = 0;
};

inline Answer read_answer(const std::vector<uint8_t>& wire) {
    Answer a;
    ldns_pkt* p = nullptr;
    if (ldns_wire2pkt(&p, wire.data(), wire.size()) != LDNS_STATUS_OK) return a;
    a.rcode = ldns_pkt_get_rcode(p);
    a.id = ldns_pkt_id(p);
    a.aa = ldns_pkt_aa(p);
    a.questions = ldns_pkt_qdcount(p);
    ldns_rr_list* answers = ldns_pkt_answer(p);
    for (size_t i = 0; i < ldns_rr_list_rr_count(answers); ++i) {
        ldns_rr* rr = ldns_rr_list_rr(answers, i);
        char* owner = ldns_rdf2str(ldns_rr_owner(rr));
        char* addr = ldns_rdf2str(ldns_rr_rdf(rr, 0));
        a.owners.push_back(owner);
        a.addresses.push_back(addr);
        a.ttl = ldns_rr_ttl(rr);
        a.rclass = static_cast<uint16_t>(ldns_rr_get_class(rr));
        std::free(owner);
        std::free(addr);
    }
    ldns_pkt_free(p);
    return a;
}

}  // namespace nm::testkit
