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

TEST_CASE("a table that is not a list or an object is rejected") {
    CHECK_FALSE(entries_from_json(boost::json::parse("42")));
    CHECK_FALSE(entries_from_json(boost::json::parse("[1]")));
    CHECK(entries_from_json(boost::json::parse("[]"))->empty());
}
