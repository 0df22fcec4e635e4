// POST /unikernel/deploy and /unikernel/undeploy (protocol.md, "Node API"): the node engine's
// bodies, their validation, and the reference's answers.
#include <catch2/catch.hpp>

#include "api_harness.hpp"

using namespace nm;
using namespace nm::testkit;

TEST_CASE(
    "a unikernel deploy as the node engine sends it reaches the node and is answered like a "
    "container deploy") {
    ApiHarness api("nm-api-uk-deploy");
    auto body = GENERATE(
        as<std::string>{},
        R"({"pid": 0, "serviceName": "app.ns.waves.default", "instanceNumber": 2, "portMappings": "8080:80"})",
        R"({"serviceName": "app.ns.waves.default", "instanceNumber": 2, "portMappings": "8080:80", "extra": true})");
    auto answer = api.post("/unikernel/deploy", body);
    INFO(body << " -> " << answer.body);
    REQUIRE(answer.status == 200);
    auto json = answer.json();
    CHECK(json.at("serviceName") == "app.ns.waves.default");
    CHECK(json.at("nsAddress") == "172.19.1.2");  // what the fake node answered
    CHECK(json.at("nsAddressv6").is_string());
    REQUIRE(api.node().calls() == std::vector<std::string>{"deploy"});
    auto request = api.node().last_deploy();
    CHECK(request.kind == DeployKind::unikernel);
    CHECK(request.service_name == "app.ns.waves.default");
    CHECK(request.instance_number == 2);
    CHECK(request.port_mappings == "8080:80");
}

TEST_CASE("a bad unikernel deploy body is answered 400 naming the field, and calls nothing") {
    ApiHarness api("nm-api-uk-bad");
    auto [body, field] = GENERATE(table<std::string, std::string>({
        {R"({"pid": 0, "instanceNumber": 0})", "serviceName"},
        {R"({"pid": 0, "serviceName": "a.b.c", "instanceNumber": 0})", "serviceName"},
        {R"({"pid": 0, "serviceName": "a.b.c.d"})", "instanceNumber"},
        {R"({"pid": 0, "serviceName": "a.b.c.d", "instanceNumber": -1})", "instanceNumber"},
        {R"({"pid": "0", "serviceName": "a.b.c.d", "instanceNumber": 0})", "pid"},
        {R"({"pid": 0, "serviceName": "a.b.c.d", "instanceNumber": 0, "portMappings": "70000:80"})",
         "portMappings"},
        {R"({"pid": 0, "serviceName": "a.b.c.d", "instanceNumber": 0, "portMappings": 8080})",
         "portMappings"},
        {R"([1, 2])", "JSON object"},
    }));
    auto answer = api.post("/unikernel/deploy", body);
    INFO(body << " -> " << answer.body);
    CHECK(answer.status == 400);
    CHECK(answer.error().find(field) != std::string::npos);
    CHECK(api.node().calls().empty());
}

TEST_CASE(
    "a unikernel undeploy of an instance the node does not know is answered 200, as the reference "
    "does") {
    ApiHarness api("nm-api-uk-undeploy");
    const std::string body = R"({"serviceName": "app.ns.uni.default", "instanceNumber": 1})";
    SECTION("known") {
        CHECK(api.post("/unikernel/undeploy", body).status == 200);
    }
    SECTION("unknown") {
        api.node().fail_next(Errc::not_found, "app.ns.uni.default instance 1 is not deployed here");
        CHECK(api.post("/unikernel/undeploy", body).status == 200);
    }
    REQUIRE(api.node().calls() == std::vector<std::string>{"undeploy"});
    CHECK(api.node().last_undeploy().kind == DeployKind::unikernel);
    CHECK(api.node().last_undeploy().service_name == "app.ns.uni.default");
    CHECK(api.node().last_undeploy().instance_number == 1);
}

TEST_CASE("a unikernel deploy or undeploy that fails on the node is answered with its error") {
    ApiHarness api("nm-api-uk-fail");
    api.node().fail_next(Errc::exhausted, "address pool 10.18.0.0/26 is exhausted");
    auto answer = api.post("/unikernel/deploy",
                           R"({"pid": 0, "serviceName": "a.b.c.d", "instanceNumber": 0})");
    CHECK(answer.status == 503);
    CHECK(answer.error() == "address pool 10.18.0.0/26 is exhausted");
    api.node().fail_next(Errc::system, "netlink: Device or resource busy (nmv3)");
    answer = api.post("/unikernel/undeploy", R"({"serviceName": "a.b.c.d", "instanceNumber": 0})");
    CHECK(answer.status == 500);
    CHECK(answer.error() == "netlink: Device or resource busy (nmv3)");
}

TEST_CASE("unikernel endpoints before registration are answered 409, and other methods 405") {
    ApiHarness api("nm-api-uk-409");
    api.node().set_registered(false);
    CHECK(api.post("/unikernel/deploy",
                   R"({"pid": 0, "serviceName": "a.b.c.d", "instanceNumber": 0})")
              .status == 409);
    CHECK(api.post("/unikernel/undeploy", R"({"serviceName": "a.b.c.d", "instanceNumber": 0})")
              .status == 409);
    CHECK(api.node().calls().empty());
    CHECK(api.request("GET", "/unikernel/deploy").status == 405);
    CHECK(api.request("DELETE", "/unikernel/undeploy").status == 405);
}
