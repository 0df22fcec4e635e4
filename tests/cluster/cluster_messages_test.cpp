#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>

#include "cluster/cluster_messages.hpp"

using namespace nm;

TEST_CASE("a subnetwork result's bare bases are a /26 and a /120, as the cluster's root hands them out") {
    auto a = parse_subnetwork_result(R"({"address": "10.18.0.64", "addressv6": "fc00::100"})");
    REQUIRE(a);
    CHECK(a->subnet.to_string() == "10.18.0.64/26");
    CHECK(a->subnet.host(1).to_string() == "10.18.0.65");  // the bridge: base + 1
    CHECK(a->subnet_v6 == "fc00::100/120");
    auto first = parse_subnetwork_result(R"({"address": "10.18.0.0", "addressv6": "fc00::"})");
    REQUIRE(first);
    CHECK(first->subnet.to_string() == "10.18.0.0/26");
    CHECK(first->subnet_v6 == "fc00::/120");
    auto no_v6 = GENERATE(std::string(R"({"address": "10.18.0.128"})"),
                          std::string(R"({"address": "10.18.0.128", "addressv6": ""})"),
                          std::string(R"({"address": "10.18.0.128", "addressv6": null})"));
    auto b = parse_subnetwork_result(no_v6);
    REQUIRE(b);
    CHECK(b->subnet.to_string() == "10.18.0.128/26");
    CHECK(b->subnet_v6.empty());
}

TEST_CASE("a subnetwork result's prefix lengths are configurable, and an explicit one is kept") {
    auto a = parse_subnetwork_result(R"({"address": "10.18.1.0", "addressv6": "fc00::1:0"})", 24, 112);
    REQUIRE(a);
    CHECK(a->subnet.to_string() == "10.18.1.0/24");
    CHECK(a->subnet_v6 == "fc00::1:0/112");
    auto b = parse_subnetwork_result(R"({"address": "10.18.5.0/25", "addressv6": "fc00::200/121"})");
    REQUIRE(b);
    CHECK(b->subnet.to_string() == "10.18.5.0/25");
    CHECK(b->subnet_v6 == "fc00::200/121");
}

TEST_CASE("a malformed subnetwork result is an error naming the problem") {
    auto [payload, words] = GENERATE(table<std::string, std::string>({
        {"not json", "not valid JSON"},
        {"[1]", "must be a JSON object"},
        {"{}", "\"address\": missing"},
        {R"({"address": 5})", "expected a string"},
        {R"({"address": "10.18.300.0"})", "not a subnet"},
        {R"({"address": "10.18.0.65"})", "host bits"},
        {R"({"address": "10.18.0.32"})", "host bits set for a /26"},
        {R"({"address": "10.18.0.64", "addressv6": "fc00::zz"})", "not an IPv6 subnet"},
        {R"({"address": "10.18.0.64", "addressv6": "fc00::101"})", "host bits"},
        {R"({"address": "10.18.0.64", "addressv6": 6})", "expected a string"},
    }));
    auto r = parse_subnetwork_result(payload);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::invalid_argument);
    CHECK_THAT(r.error().message, Catch::Contains(words));
}

TEST_CASE("a table query result becomes one table entry per instance") {
    auto r = parse_tablequery_result(R"({"app_name": "web.prod.front.main", "query_key": "172.30.0.4",
        "instance_list": [{"instance_number": 2, "namespace_ip": "172.19.1.12", "namespace_ip_v6": "",
          "host_ip": "10.0.0.7", "host_port": 50103,
          "service_ip": [{"IpType": "RR", "Address": "172.30.0.4", "Address_v6": ""},
                         {"IpType": "InstanceNumber", "Address": "172.30.0.9"}]}]})");
    REQUIRE(r);
    CHECK(r->app_name == "web.prod.front.main");
    CHECK(r->query_key == "172.30.0.4");
    REQUIRE(r->entries.size() == 1);
    const TableEntry& e = r->entries[0];
    CHECK(e.appname == "web");
    CHECK(e.appns == "prod");
    CHECK(e.servicename == "front");
    CHECK(e.servicenamespace == "main");
    CHECK(e.instancenumber == 2);
    CHECK(e.nsip.to_string() == "172.19.1.12");
    CHECK(e.nodeip.to_string() == "10.0.0.7");
    CHECK(e.nodeport == 50103);
    REQUIRE(e.serviceip.size() == 2);
    CHECK(e.serviceip[0] == ServiceIp{IpType::RR, *Ipv4::parse("172.30.0.4")});
    CHECK(e.serviceip[1] == ServiceIp{IpType::InstanceNumber, *Ipv4::parse("172.30.0.9")});
}

TEST_CASE("an empty instance list is a valid 'no such service' answer") {
    auto r = parse_tablequery_result(R"({"app_name": "", "query_key": "172.30.9.9", "instance_list": []})");
    REQUIRE(r);
    CHECK(r->entries.empty());
    CHECK(r->query_key == "172.30.9.9");
}

TEST_CASE("a malformed table query result is rejected with the bad field named") {
    auto [payload, words] = GENERATE(table<std::string, std::string>({
        {"{", "not valid JSON"},
        {R"({"app_name": 3})", "\"app_name\": expected a string"},
        {R"({"app_name": "a.b.c.d", "instance_list": {}})", "\"instance_list\": expected an array"},
        {R"({"app_name": "a.b.c", "instance_list": [{}]})", "four dot-separated parts"},
        {R"({"app_name": "a.b.c.d", "instance_list": [7]})", "instance_list[0]: expected an object"},
        {R"({"app_name": "a.b.c.d", "instance_list": [{"instance_number": "1"}]})", "instance_number"},
        {R"({"app_name": "a.b.c.d", "instance_list": [{"instance_number": 1, "namespace_ip": "x",
            "host_ip": "10.0.0.1", "host_port": 1}]})", "namespace_ip"},
        {R"({"app_name": "a.b.c.d", "instance_list": [{"instance_number": 1, "namespace_ip": "172.19.1.2",
            "host_ip": "10.0.0.1", "host_port": 70000}]})", "host_port"},
        {R"({"app_name": "a.b.c.d", "instance_list": [{"instance_number": 1, "namespace_ip": "172.19.1.2",
            "host_ip": "10.0.0.1", "host_port": 5, "service_ip": [{"IpType": "Fastest", "Address": "172.30.0.1"}]}]})",
         "IpType"},
    }));
    auto r = parse_tablequery_result(payload);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains(words));
}

TEST_CASE("outgoing payloads carry the reference field names") {
    auto parsed = [](const std::string& text) { return boost::json::parse(text).as_object(); };
    CHECK(parsed(subnet_request_payload()) == boost::json::object{{"METHOD", "GET"}});
    CHECK(parsed(tablequery_request_by_ip(*Ipv4::parse("172.30.0.4"))) ==
          boost::json::object{{"sname", ""}, {"sip", "172.30.0.4"}});
    CHECK(parsed(tablequery_request_by_name("a.b.c.d")) == boost::json::object{{"sname", "a.b.c.d"}, {"sip", ""}});
    DeployedNotice n{"a.b.c.d", "DEPLOYED", 1, *Ipv4::parse("172.19.1.3"), "", *Ipv4::parse("10.0.0.2"), 50103};
    CHECK(parsed(to_payload(n)) == boost::json::object{{"appname", "a.b.c.d"},
                                                       {"status", "DEPLOYED"},
                                                       {"instance_number", 1},
                                                       {"nsip", "172.19.1.3"},
                                                       {"nsipv6", ""},
                                                       {"host_ip", "10.0.0.2"},
                                                       {"host_port", 50103}});
    CHECK(parsed(undeployed_payload("a.b.c.d", 3)) ==
          boost::json::object{{"appname", "a.b.c.d"}, {"instance_number", 3}});
    CHECK(parsed(interest_remove_payload("a.b.c.d")) == boost::json::object{{"appname", "a.b.c.d"}});
    CHECK(parsed(address_changed_payload("a.b.c.d", 0, *Ipv4::parse("10.0.0.9"), 50104)) ==
          boost::json::object{{"appname", "a.b.c.d"}, {"instance_number", 0}, {"host_ip", "10.0.0.9"},
                              {"host_port", 50104}});
}
