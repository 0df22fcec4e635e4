#include "table/table_json.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "test_entries.hpp"

using namespace nm;
using namespace nm::test;

TEST_CASE("an entry converts to protocol.md's JSON and back unchanged") {
    auto e = entry("web", 2, "172.19.1.2", "10.0.0.1",
                   {{IpType::RR, "172.30.0.10"},
                    {IpType::Closest, "172.30.0.11"},
                    {IpType::InstanceNumber, "172.30.1.2"}},
                   50011);
    auto json = to_json(e);
    const auto& o = json.as_object();
    CHECK(o.at("appname").as_string() == "web");
    CHECK(o.at("servicenamespace").as_string() == "ns");
    CHECK(o.at("instancenumber").as_int64() == 2);
    CHECK(o.at("nodeip").as_string() == "10.0.0.1");
    CHECK(o.at("nodeport").as_int64() == 50011);
    CHECK(o.at("nsip").as_string() == "172.19.1.2");
    CHECK(o.at("serviceip").as_array()[1].as_object().at("IpType").as_string() == "Closest");
    CHECK(o.at("serviceip").as_array()[1].as_object().at("Address").as_string() == "172.30.0.11");
    auto back = entries_from_json(boost::json::parse(boost::json::serialize(to_json({e, e}))));
    REQUIRE(back);
    REQUIRE(back->size() == 2);
    CHECK((*back)[1] == e);
    auto single = entries_from_json(json);
    REQUIRE(single);
    CHECK(single->at(0) == e);
}

TEST_CASE("a bad entry in JSON is rejected with the entry and the field named") {
    auto good = boost::json::serialize(
        to_json(entry("web", 0, "172.19.1.2", "10.0.0.1", {{IpType::RR, "172.30.0.10"}})));
    auto [edit, message] = GENERATE(table<std::string, std::string>({
        {R"("nodeport":50103)", R"("nodeport":70000)"},
        {R"("nodeport":50103)", R"("nodeport":"50103")"},
        {R"("nsip":"172.19.1.2")", R"("nsip":"172.19.1")"},
        {R"("appname":"web",)", ""},
        {R"("instancenumber":0)", R"("instancenumber":-1)"},
        {R"("IpType":"RR")", R"("IpType":"Random")"},
        {R"("Address":"172.30.0.10")", R"("Address":7)"},
    }));
    auto text = good;
    auto at = text.find(edit);
    REQUIRE(at != std::string::npos);
    text.replace(at, edit.size(), message);
    auto r = entries_from_json(boost::json::parse("[" + good + "," + text + "]"));
    REQUIRE_FALSE(r);
    INFO(r.error().message);
    CHECK(r.error().message.rfind("entry 2: ", 0) == 0);
    const std::string field = edit.substr(1, edit.find('"', 1) - 1);
    const bool names_field = r.error().message.find(field) != std::string::npos ||
                             r.error().message.find("serviceip") != std::string::npos;
    CHECK(names_field);
}

TEST_CASE("nsipv6 and Address_v6 convert to JSON and back, and may be absent, null or empty") {
    auto e = entry("web", 2, "172.19.1.2", "10.0.0.1",
                   {{IpType::RR, "172.30.0.10"}, {IpType::InstanceNumber, "172.30.1.2"}});
    e.nsipv6 = *Ipv6::parse("fc00::102");
    e.serviceip[0].address_v6 = *Ipv6::parse("fdff:2000::a");
    auto json = to_json(e);
    const auto& o = json.as_object();
    CHECK(o.at("nsipv6").as_string() == "fc00::102");
    const auto& sips = o.at("serviceip").as_array();
    CHECK(sips[0].as_object().at("Address_v6").as_string() == "fdff:2000::a");
    CHECK(sips[1].as_object().at("Address_v6").as_string() == "");  // none, as the wire has it
    auto back = entries_from_json(json);
    REQUIRE(back);
    CHECK(back->at(0) == e);

    auto v4_only = entry("web", 0, "172.19.1.2", "10.0.0.1", {{IpType::RR, "172.30.0.10"}});
    std::string text = boost::json::serialize(to_json(v4_only));
    auto nsipv6 =
        GENERATE(std::string(R"("nsipv6":"",)"), std::string(R"("nsipv6":null,)"), std::string());
    std::string variant = text;
    variant.replace(variant.find(R"("nsipv6":"",)"), 12, nsipv6);
    auto read = entries_from_json(boost::json::parse(variant));
    INFO(variant);
    REQUIRE(read);
    CHECK(read->at(0).nsipv6.is_unspecified());
    CHECK(read->at(0) == v4_only);
}

TEST_CASE("a bad IPv6 address in a JSON entry is rejected with its field named") {
    auto e = entry("web", 0, "172.19.1.2", "10.0.0.1", {{IpType::RR, "172.30.0.10"}});
    std::string text = boost::json::serialize(to_json(e));
    auto [edit, replacement, field] = GENERATE(table<std::string, std::string, std::string>({
        {R"("nsipv6":"")", R"("nsipv6":"fc00::1::2")", "nsipv6"},
        {R"("nsipv6":"")", R"("nsipv6":7)", "nsipv6"},
        {R"("Address_v6":"")", R"("Address_v6":"10.30.0.1")", "Address_v6"},
    }));
    text.replace(text.find(edit), edit.size(), replacement);
    auto r = entries_from_json(boost::json::parse(text));
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains(field));
}

TEST_CASE("a table that is not a list or an object is rejected") {
    CHECK_FALSE(entries_from_json(boost::json::parse("42")));
    CHECK_FALSE(entries_from_json(boost::json::parse("[1]")));
    CHECK(entries_from_json(boost::json::parse("[]"))->empty());
}
