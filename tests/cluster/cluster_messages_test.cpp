#include "cluster/cluster_messages.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

using namespace nm;

TEST_CASE(
    "a subnetwork result's bare bases are a /26 and a /120, as the cluster's root hands them out") {
    auto a = parse_subnetwork_result(R"({"address": "10.18.0.64", "addressv6": "fc00::100"})");
    REQUIRE(a);
    CHECK(a->subnet.to_string() == "10.18.0.64/26");
    CHECK(a->subnet.host(1).to_string() == "10.18.0.65");  // the bridge: base + 1
    CHECK(a->subnet_v6->to_string() == "fc00::100/120");
    auto first = parse_subnetwork_result(R"({"address": "10.18.0.0", "addressv6": "fc00::"})");
    REQUIRE(first);
    CHECK(first->subnet.to_string() == "10.18.0.0/26");
    CHECK(first->subnet_v6->to_string() == "fc00::/120");
    auto no_v6 = GENERATE(std::string(R"({"address": "10.18.0.128"})"),
                          std::string(R"({"address": "10.18.0.128", "addressv6": ""})"),
                          std::string(R"({"address": "10.18.0.128", "addressv6": null})"));
    auto b = parse_subnetwork_result(no_v6);
    REQUIRE(b);
    CHECK(b->subnet.to_string() == "10.18.0.128/26");
    CHECK_FALSE(b->subnet_v6);
}

TEST_CASE("a subnetwork result's prefix lengths are configurable, and an explicit one is kept") {
    auto a =
        parse_subnetwork_result(R"({"address": "10.18.1.0", "addressv6": "fc00::1:0"})", 24, 112);
    REQUIRE(a);
    CHECK(a->subnet.to_string() == "10.18.1.0/24");
    CHECK(a->subnet_v6->to_string() == "fc00::1:0/112");
    auto b =
        parse_subnetwork_result(R"({"address": "10.18.5.0/25", "addressv6": "fc00::200/121"})");
    REQUIRE(b);
    CHECK(b->subnet.to_string() == "10.18.5.0/25");
    CHECK(b->subnet_v6->to_string() == "fc00::200/121");
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
    auto r =
        parse_tablequery_result(R"({"app_name": "web.prod.front.main", "query_key": "172.30.0.4",
        "instance_list": [{"instance_number": 2, "instance_ip": "172.30.0.9", "instance_ip_v6": "fdff::9",
          "namespace_ip": "172.19.1.12", "namespace_ip_v6": "fc00::102",
          "host_ip": "10.0.0.7", "host_port": 50103, "cluster_id": "c1", "worker_id": "64f1a2b3c4d5e6f708192a3b",
          "service_ip": [{"IpType": "RR", "Address": "172.30.0.4", "Address_v6": "fdff:2000::4"},
                         {"IpType": "instance_ip", "Address": "172.30.0.9", "Address_v6": "fdff::9"}]}]})");
    REQUIRE(r);
    CHECK(r->app_name == "web.prod.front.main");
    CHECK(r->query_key == "172.30.0.4");
    CHECK(r->job == "web.prod.front.main");
    REQUIRE(r->entries.size() == 1);
    CHECK(r->pending == 0);
    CHECK(r->invalid.empty());
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
    CHECK(e.nsipv6.to_string() == "fc00::102");
    CHECK(e.serviceip[0] ==
          ServiceIp{IpType::RR, *Ipv4::parse("172.30.0.4"), *Ipv6::parse("fdff:2000::4")});
    CHECK(e.serviceip[1] ==
          ServiceIp{IpType::InstanceNumber, *Ipv4::parse("172.30.0.9"), *Ipv6::parse("fdff::9")});
}

TEST_CASE("an instance without IPv6 has namespace_ip_v6 \"\" and ServiceIPs without Address_v6") {
    // Our agent before IPv6 published nsipv6 "", and the cluster answers with what it stored.
    auto r = parse_tablequery_result(R"({"app_name": "a.b.c.d", "query_key": "a.b.c.d",
        "instance_list": [{"instance_number": 0, "namespace_ip": "10.18.0.66", "namespace_ip_v6": "",
          "host_ip": "10.0.0.7", "host_port": 50103,
          "service_ip": [{"IpType": "RR", "Address": "10.30.0.3", "Address_v6": ""},
                         {"IpType": "instance_ip", "Address": "10.30.0.7"},
                         {"IpType": "instance_ip", "Address": "10.30.0.8", "Address_v6": "zz::1"}]}]})");
    REQUIRE(r);
    REQUIRE(r->entries.size() == 1);
    const TableEntry& e = r->entries[0];
    CHECK(e.nsipv6.is_unspecified());
    REQUIRE(e.serviceip.size() == 3);
    for (const ServiceIp& sip : e.serviceip) CHECK(sip.address_v6.is_unspecified());
    CHECK(e.serviceip[2].address.to_string() == "10.30.0.8");
}

TEST_CASE(
    "the released cluster's result shape: a pending instance with nulls is skipped, the running "
    "ones kept") {
    // As protocol.md shows it: an upper-case task id, instance_ip entries, int host_port, and
    // instance 1 scheduled but not running yet (its addresses and port null).
    auto r = parse_tablequery_result(R"({
        "app_name": "oakestragaming.2LDX3BEFPZBXTOLNBUG4Z7OOF4.MightyWavesJump.default",
        "query_key": "10.30.0.3",
        "instance_list": [
          {"instance_number": 0, "instance_ip": "10.30.0.7", "instance_ip_v6": "fdff::7",
           "namespace_ip": "10.18.0.66", "namespace_ip_v6": "fc00::102", "host_ip": "192.168.1.10",
           "host_port": 50103, "cluster_id": "6523f0a0b1c2d3e4f5a6b7c8", "worker_id": "6523f0a0b1c2d3e4f5a6b7c9",
           "service_ip": [{"IpType": "RR", "Address": "10.30.0.3", "Address_v6": "fdff:2000::3"},
                          {"IpType": "instance_ip", "Address": "10.30.0.7", "Address_v6": "fdff::7"}]},
          {"instance_number": 1, "instance_ip": "10.30.0.8", "instance_ip_v6": "fdff::8",
           "namespace_ip": null, "namespace_ip_v6": null, "host_ip": null, "host_port": null,
           "cluster_id": "6523f0a0b1c2d3e4f5a6b7c8", "worker_id": null,
           "service_ip": [{"IpType": "RR", "Address": "10.30.0.3", "Address_v6": "fdff:2000::3"},
                          {"IpType": "instance_ip", "Address": "10.30.0.8", "Address_v6": "fdff::8"}]},
          {"instance_number": 2, "instance_ip": "10.30.0.9",
           "namespace_ip": "10.18.0.130", "namespace_ip_v6": "fc00::202", "host_ip": "192.168.1.11",
           "host_port": 50103,
           "service_ip": [{"IpType": "RR", "Address": "10.30.0.3", "Address_v6": "fdff:2000::3"},
                          {"IpType": "instance_ip", "Address": "10.30.0.9", "Address_v6": "fdff::9"}]}]})");
    REQUIRE(r);
    CHECK(r->job == "oakestragaming.2LDX3BEFPZBXTOLNBUG4Z7OOF4.MightyWavesJump.default");
    CHECK(r->pending == 1);
    CHECK(r->invalid.empty());
    REQUIRE(r->entries.size() == 2);
    CHECK(r->entries[0].appns == "2LDX3BEFPZBXTOLNBUG4Z7OOF4");
    CHECK(r->entries[0].servicename == "MightyWavesJump");
    CHECK(r->entries[0].instancenumber == 0);
    CHECK(r->entries[1].instancenumber == 2);
    CHECK(r->entries[1].nsip.to_string() == "10.18.0.130");
    CHECK(r->entries[1].nodeip.to_string() == "192.168.1.11");
    CHECK(r->entries[1].nodeport == 50103);
    CHECK(r->entries[1].nsipv6.to_string() == "fc00::202");
    CHECK(r->entries[1].serviceip ==
          std::vector<ServiceIp>{
              {IpType::RR, *Ipv4::parse("10.30.0.3"), *Ipv6::parse("fdff:2000::3")},
              {IpType::InstanceNumber, *Ipv4::parse("10.30.0.9"), *Ipv6::parse("fdff::9")}});
}

TEST_CASE("an instance whose addresses or port are missing rather than null is pending too") {
    auto field =
        GENERATE(as<std::string>{}, "namespace_ip", "namespace_ip_v6", "host_ip", "host_port");
    boost::json::object instance{{"instance_number", 0},  {"namespace_ip", "172.19.1.2"},
                                 {"namespace_ip_v6", ""}, {"host_ip", "10.0.0.1"},
                                 {"host_port", 50103},    {"service_ip", boost::json::array{}}};
    instance.erase(field);
    boost::json::object running{{"instance_number", 1},
                                {"namespace_ip", "172.19.1.3"},
                                {"namespace_ip_v6", ""},
                                {"host_ip", "10.0.0.1"},
                                {"host_port", 50103}};
    auto r = parse_tablequery_result(boost::json::serialize(
        boost::json::object{{"app_name", "a.b.c.d"},
                            {"query_key", "a.b.c.d"},
                            {"instance_list", boost::json::array{instance, running}}}));
    INFO(field);
    REQUIRE(r);
    CHECK(r->pending == 1);
    REQUIRE(r->entries.size() == 1);
    CHECK(r->entries[0].instancenumber == 1);
}

TEST_CASE(
    "IpType instance_ip and every unknown type mean the instance's own address, RR and Closest "
    "keep theirs") {
    CHECK(ip_type_as_reference("RR") == IpType::RR);
    CHECK(ip_type_as_reference("Closest") == IpType::Closest);
    CHECK(ip_type_as_reference("InstanceNumber") == IpType::InstanceNumber);
    CHECK(ip_type_as_reference("instance_ip") == IpType::InstanceNumber);
    CHECK(ip_type_as_reference("Fastest") == IpType::InstanceNumber);
    CHECK(ip_type_as_reference("") == IpType::InstanceNumber);
    CHECK(ip_type_as_reference("rr") ==
          IpType::InstanceNumber);  // as the reference: exact names only
    auto r =
        parse_tablequery_result(R"({"app_name": "a.b.c.d", "instance_list": [{"instance_number": 0,
        "namespace_ip": "172.19.1.2", "namespace_ip_v6": "", "host_ip": "10.0.0.1", "host_port": 50103,
        "service_ip": [{"IpType": "Fastest", "Address": "172.30.0.1"}, {"Address": "172.30.0.2"},
                       {"IpType": "RR", "Address": null, "Address_v6": "fdff::1"}, 7,
                       {"IpType": "Closest", "Address": "172.30.0.3", "Weight": 2}]}]})");
    REQUIRE(r);
    REQUIRE(r->entries.size() == 1);
    // The element without an IPv4 address and the one that is no object are skipped.
    CHECK(r->entries[0].serviceip ==
          std::vector<ServiceIp>{{IpType::InstanceNumber, *Ipv4::parse("172.30.0.1")},
                                 {IpType::InstanceNumber, *Ipv4::parse("172.30.0.2")},
                                 {IpType::Closest, *Ipv4::parse("172.30.0.3")}});
}

TEST_CASE("host_port may be an integer or a string of digits") {
    auto port = GENERATE(as<std::string>{}, "50104", "\"50104\"");
    auto r =
        parse_tablequery_result(R"({"app_name": "a.b.c.d", "instance_list": [{"instance_number": 0,
        "namespace_ip": "172.19.1.2", "namespace_ip_v6": "", "host_ip": "10.0.0.1", "host_port": )" +
                                port + "}]}");
    INFO(port);
    REQUIRE(r);
    REQUIRE(r->entries.size() == 1);
    CHECK(r->entries[0].nodeport == 50104);
}

TEST_CASE("app_name empty or null: the job is the query_key of a by-name query") {
    auto app = GENERATE(as<std::string>{}, "null", "\"\"");
    auto r =
        parse_tablequery_result(R"({"app_name": )" + app + R"(, "query_key": "Shop.prod.cart.main",
        "instance_list": [{"instance_number": 0, "namespace_ip": "172.19.1.2", "namespace_ip_v6": "",
          "host_ip": "10.0.0.1", "host_port": 50103}]})");
    INFO(app);
    REQUIRE(r);
    CHECK(r->app_name.empty());
    CHECK(r->job == "Shop.prod.cart.main");
    REQUIRE(r->entries.size() == 1);
    CHECK(r->entries[0].job_name() == "Shop.prod.cart.main");
    // A by-address answer without a job name has nothing to file its instances under.
    auto lost = parse_tablequery_result(R"({"app_name": )" + app + R"(, "query_key": "172.30.0.4",
        "instance_list": [{"instance_number": 0, "namespace_ip": "172.19.1.2", "namespace_ip_v6": "",
          "host_ip": "10.0.0.1", "host_port": 50103}]})");
    REQUIRE_FALSE(lost);
    CHECK_THAT(lost.error().message, Catch::Contains("no job name"));
}

TEST_CASE("an empty instance list is a valid 'no such service' answer") {
    auto app = GENERATE(as<std::string>{}, "null", "\"\"");
    auto r = parse_tablequery_result(R"({"app_name": )" + app +
                                     R"(, "query_key": "172.30.9.9", "instance_list": []})");
    REQUIRE(r);
    CHECK(r->entries.empty());
    CHECK(r->job.empty());
    CHECK(r->query_key == "172.30.9.9");
    auto none = parse_tablequery_result(
        R"({"app_name": "", "query_key": "172.30.9.9", "instance_list": null})");
    REQUIRE(none);
    CHECK(none->entries.empty());
}

TEST_CASE("one bad instance is skipped with the reason, the others kept") {
    auto [bad, words] = GENERATE(table<std::string, std::string>({
        {"7", "instance_list[0]: expected an object"},
        {R"({"instance_number": "1", "namespace_ip": "172.19.1.2", "namespace_ip_v6": "", "host_ip": "10.0.0.1",
             "host_port": 1})",
         "instance_number"},
        {R"({"instance_number": 1, "namespace_ip": "x", "namespace_ip_v6": "", "host_ip": "10.0.0.1",
             "host_port": 1})",
         "namespace_ip"},
        {R"({"instance_number": 1, "namespace_ip": "172.19.1.2", "namespace_ip_v6": "", "host_ip": "10.0.0",
             "host_port": 1})",
         "host_ip"},
        {R"({"instance_number": 1, "namespace_ip": "172.19.1.2", "namespace_ip_v6": "fc00::1::2",
             "host_ip": "10.0.0.1", "host_port": 1})",
         "namespace_ip_v6"},
        {R"({"instance_number": 1, "namespace_ip": "172.19.1.2", "namespace_ip_v6": 5,
             "host_ip": "10.0.0.1", "host_port": 1})",
         "namespace_ip_v6"},
        {R"({"instance_number": 1, "namespace_ip": "172.19.1.2", "namespace_ip_v6": "", "host_ip": "10.0.0.1",
             "host_port": 70000})",
         "host_port"},
        {R"({"instance_number": 1, "namespace_ip": "172.19.1.2", "namespace_ip_v6": "", "host_ip": "10.0.0.1",
             "host_port": "50103x"})",
         "host_port"},
    }));
    auto r = parse_tablequery_result(R"({"app_name": "a.b.c.d", "instance_list": [)" + bad + R"(,
        {"instance_number": 5, "namespace_ip": "172.19.1.9", "namespace_ip_v6": "", "host_ip": "10.0.0.1",
         "host_port": 50103}]})");
    INFO(bad);
    REQUIRE(r);
    REQUIRE(r->invalid.size() == 1);
    CHECK_THAT(r->invalid[0], Catch::Contains(words));
    REQUIRE(r->entries.size() == 1);
    CHECK(r->entries[0].instancenumber == 5);
}

TEST_CASE("a table query result unusable as a whole is rejected with the bad field named") {
    auto [payload, words] = GENERATE(table<std::string, std::string>({
        {"{", "not valid JSON"},
        {"[]", "must be a JSON object"},
        {R"({"app_name": 3})", "\"app_name\": expected a string"},
        {R"({"app_name": "a.b.c.d", "instance_list": {}})", "\"instance_list\": expected an array"},
        {R"({"app_name": "a.b.c", "instance_list": [{}]})", "no job name"},
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
    CHECK(parsed(tablequery_request_by_ip(*Ipv6::parse("fdff:2000:0::3"))) ==
          boost::json::object{{"sname", ""}, {"sip", "fdff:2000::3"}});
    CHECK(parsed(tablequery_request_by_name("a.b.c.d")) ==
          boost::json::object{{"sname", "a.b.c.d"}, {"sip", ""}});
    DeployedNotice n{
        "a.b.c.d", "DEPLOYED", 1, *Ipv4::parse("172.19.1.3"), "", *Ipv4::parse("10.0.0.2"), 50103};
    CHECK(parsed(to_payload(n)) == boost::json::object{{"appname", "a.b.c.d"},
                                                       {"status", "DEPLOYED"},
                                                       {"instance_number", 1},
                                                       {"nsip", "172.19.1.3"},
                                                       {"nsipv6", ""},
                                                       {"host_ip", "10.0.0.2"},
                                                       {"host_port", 50103}});
    CHECK(parsed(undeployed_payload("a.b.c.d", 3)) ==
          boost::json::object{{"appname", "a.b.c.d"}, {"instance_number", 3}});
    CHECK(parsed(interest_remove_payload("a.b.c.d")) ==
          boost::json::object{{"appname", "a.b.c.d"}});
    CHECK(parsed(address_changed_payload("a.b.c.d", 0, *Ipv4::parse("10.0.0.9"), 50104)) ==
          boost::json::object{{"appname", "a.b.c.d"},
                              {"instance_number", 0},
                              {"host_ip", "10.0.0.9"},
                              {"host_port", 50104}});
}
