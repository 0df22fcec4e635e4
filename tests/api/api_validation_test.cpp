// Every endpoint's bad bodies: the right 4xx, an {"error": ...} body, and no NodeControl call.
#include <catch2/catch.hpp>

#include "api_harness.hpp"

using namespace nm;
using namespace nm::testkit;

namespace {
const std::string good_container =
    R"({"pid": 4242, "serviceName": "web.prod.front.main", "instanceNumber": 0, "portMappings": "8080:80/tcp"})";
}

TEST_CASE("a body that is not a JSON object is answered 400 on every endpoint and calls nothing") {
    ApiHarness api("nm-api-notjson");
    auto path = GENERATE(as<std::string>{}, "/register", "/docker/deploy", "/container/deploy",
                         "/netns/deploy", "/docker/undeploy", "/container/undeploy",
                         "/netns/undeploy", "/table");
    auto body =
        GENERATE(as<std::string>{}, "{", "[1,2", "\"text\"", "42", "null", "not json at all");
    if (path == "/table" && body == "42") return;  // covered below: /table takes an array too
    auto answer = api.post(path, body);
    INFO(path << " " << body << " -> " << answer.body);
    CHECK(answer.status == 400);
    CHECK_FALSE(answer.error().empty());
    CHECK(api.node().calls().empty());
}

TEST_CASE("a missing field is answered 400 naming the field, and calls nothing") {
    ApiHarness api("nm-api-missing");
    auto [path, body, field] = GENERATE(table<std::string, std::string, std::string>({
        {"/register", R"({"cluster_address": "10.0.0.1"})", "client_id"},
        {"/register", R"({})", "client_id"},
        {"/docker/deploy", R"({"appName": "a.b.c.d", "instanceNumber": 0})", "containerId"},
        {"/docker/deploy", R"({"containerId": "abc", "instanceNumber": 0})", "appName"},
        {"/docker/deploy", R"({"containerId": "abc", "appName": "a.b.c.d"})", "instanceNumber"},
        {"/container/deploy", R"({"serviceName": "a.b.c.d", "instanceNumber": 0})", "pid"},
        {"/container/deploy", R"({"pid": 5, "instanceNumber": 0})", "serviceName"},
        {"/container/deploy", R"({"pid": 5, "serviceName": "a.b.c.d"})", "instanceNumber"},
        {"/netns/deploy", R"({"serviceName": "a.b.c.d", "instanceNumber": 0})", "name"},
        {"/netns/deploy", R"({"name": "app1", "instanceNumber": 0})", "serviceName"},
        {"/docker/undeploy", R"({"instanceNumber": 0})", "serviceName"},
        {"/container/undeploy", R"({"serviceName": "a.b.c.d"})", "instanceNumber"},
        {"/netns/undeploy", R"({"instanceNumber": 1})", "serviceName"},
        {"/table", R"({"items": []})", "entries"},
        {"/table", R"([{"appname": "a", "appns": "b", "servicename": "c", "servicenamespace": "d",
                      "instancenumber": 0, "nodeip": "10.0.0.1", "nodeport": 50103}])",
         "nsip"},
    }));
    auto answer = api.post(path, body);
    INFO(path << " " << body << " -> " << answer.body);
    CHECK(answer.status == 400);
    // Table entry fields are named like every other field (one format, core/json_fields.hpp).
    CHECK_THAT(answer.error(), Catch::Contains("\"" + field + "\": missing"));
    CHECK(api.node().calls().empty());
}

TEST_CASE("a field of the wrong type is answered 400, and calls nothing") {
    ApiHarness api("nm-api-types");
    auto [path, body, words] = GENERATE(table<std::string, std::string, std::string>({
        {"/register", R"({"client_id": 7, "cluster_address": "10.0.0.1"})", "expected a string"},
        {"/register", R"({"subnetwork": ["172.19.1.0"]})", "expected a string"},
        {"/container/deploy", R"({"pid": "4242", "serviceName": "a.b.c.d", "instanceNumber": 0})",
         "expected an integer"},
        {"/container/deploy", R"({"pid": 4242.5, "serviceName": "a.b.c.d", "instanceNumber": 0})",
         "expected an integer"},
        {"/container/deploy", R"({"pid": 0, "serviceName": "a.b.c.d", "instanceNumber": 0})",
         "between 1"},
        {"/container/deploy", R"({"pid": 5, "serviceName": "a.b.c.d", "instanceNumber": -1})",
         "between 0"},
        {"/container/deploy", R"({"pid": 5, "serviceName": "a.b.c.d", "instanceNumber": true})",
         "expected an integer"},
        {"/container/deploy",
         R"({"pid": 5, "serviceName": "a.b.c.d", "instanceNumber": 0, "portMappings": 8080})",
         "expected a string"},
        {"/docker/deploy",
         R"({"containerId": "abc", "appName": "a.b.c.d", "instanceNumber": 0, "nodePort": "50103"})",
         "expected an integer"},
        {"/docker/deploy",
         R"({"containerId": "abc", "appName": "a.b.c.d", "instanceNumber": 0, "serviceIp": {}})",
         "expected an array"},
        {"/docker/deploy", R"({"containerId": ["abc"], "appName": "a.b.c.d", "instanceNumber": 0})",
         "expected a string"},
        {"/netns/deploy", R"({"name": 1, "serviceName": "a.b.c.d", "instanceNumber": 0})",
         "expected a string"},
        {"/docker/undeploy", R"({"serviceName": "a.b.c.d", "instanceNumber": "0"})",
         "expected an integer"},
        {"/table", R"({"entries": "x"})", "expected an array"},
        {"/table", R"([1])", "must be a JSON object"},
    }));
    auto answer = api.post(path, body);
    INFO(path << " " << body << " -> " << answer.body);
    CHECK(answer.status == 400);
    CHECK_THAT(answer.error(), Catch::Contains(words));
    CHECK(api.node().calls().empty());
}

TEST_CASE("a bad job name is answered 400 on every endpoint that takes one, and calls nothing") {
    ApiHarness api("nm-api-job");
    auto name = GENERATE(as<std::string>{}, "a.b.c", "a.b.c.d.e", "a..c.d", "a.b.c.d_e",
                         "a.b.c.d\u00e9", "abcdefghijklmnopqrstuvwxyz12345.b.c.d", "");
    auto [path, body] = GENERATE_COPY(table<std::string, std::string>({
        {"/docker/deploy",
         R"({"containerId": "abc", "appName": ")" + name + R"(", "instanceNumber": 0})"},
        {"/container/deploy",
         R"({"pid": 5, "serviceName": ")" + name + R"(", "instanceNumber": 0})"},
        {"/netns/deploy",
         R"({"name": "n1", "serviceName": ")" + name + R"(", "instanceNumber": 0})"},
        {"/docker/undeploy", R"({"serviceName": ")" + name + R"(", "instanceNumber": 0})"},
        {"/container/undeploy", R"({"serviceName": ")" + name + R"(", "instanceNumber": 0})"},
        {"/netns/undeploy", R"({"serviceName": ")" + name + R"(", "instanceNumber": 0})"},
    }));
    auto answer = api.post(path, body);
    INFO(path << " " << body << " -> " << answer.body);
    CHECK(answer.status == 400);
    CHECK_FALSE(answer.error().empty());
    CHECK(api.node().calls().empty());
}

TEST_CASE(
    "an Oakestra task id with upper case and the SLA's bare port mapping are accepted as sent") {
    ApiHarness api("nm-api-oak");
    const std::string job = "oakestragaming.2LDX3BEFPZBXTOLNBUG4Z7OOF4.MightyWavesJump.default";
    auto mappings = GENERATE(as<std::string>{}, "9080", "9080/udp", "80:8080;9090/tcp", "");
    auto answer = api.post("/container/deploy", R"({"pid": 5, "serviceName": ")" + job +
                                                    R"(", "instanceNumber": 0, "portMappings": ")" +
                                                    mappings + R"("})");
    INFO(mappings << " -> " << answer.body);
    REQUIRE(answer.status == 200);
    auto d = api.node().last_deploy();
    CHECK(d.service_name == job);
    CHECK(d.job.appns == "2LDX3BEFPZBXTOLNBUG4Z7OOF4");
    CHECK(d.job.servicename == "MightyWavesJump");
    CHECK(d.port_mappings == mappings);
    // Undeploy names the same job, case and all.
    REQUIRE(
        api.post("/container/undeploy", R"({"serviceName": ")" + job + R"(", "instanceNumber": 0})")
            .status == 200);
    CHECK(api.node().last_undeploy().service_name == job);
}
TEST_CASE("bad port mappings, addresses and names are answered 400, and call nothing") {
    ApiHarness api("nm-api-values");
    auto [path, body, words] = GENERATE(table<std::string, std::string, std::string>({
        {"/container/deploy",
         R"({"pid": 5, "serviceName": "a.b.c.d", "instanceNumber": 0, "portMappings": "80:"})",
         "portMappings"},
        {"/container/deploy",
         R"({"pid": 5, "serviceName": "a.b.c.d", "instanceNumber": 0, "portMappings": "0"})",
         "portMappings"},
        {"/container/deploy",
         R"({"pid": 5, "serviceName": "a.b.c.d", "instanceNumber": 0, "portMappings": "70000:80"})",
         "portMappings"},
        {"/container/deploy",
         R"({"pid": 5, "serviceName": "a.b.c.d", "instanceNumber": 0, "portMappings": "8080:80/sctp"})",
         "portMappings"},
        {"/docker/deploy",
         R"({"containerId": "abc", "appName": "a.b.c.d", "instanceNumber": 0, "nodeIp": "10.0.0"})",
         "nodeIp"},
        {"/docker/deploy",
         R"({"containerId": "abc", "appName": "a.b.c.d", "instanceNumber": 0, "serviceIp": [{"IpType": "RR", "Address": "8.8.8.8"}]})",
         "service network"},
        {"/docker/deploy",
         R"({"containerId": "abc", "appName": "a.b.c.d", "instanceNumber": 0, "serviceIp": [{"IpType": "Nearest", "Address": "172.30.0.1"}]})",
         "IpType"},
        {"/docker/deploy",
         R"({"containerId": "../../etc", "appName": "a.b.c.d", "instanceNumber": 0})",
         "containerId"},
        {"/netns/deploy", R"({"name": "a/b", "serviceName": "a.b.c.d", "instanceNumber": 0})",
         "name"},
        {"/netns/deploy", R"({"name": "..", "serviceName": "a.b.c.d", "instanceNumber": 0})",
         "name"},
        {"/netns/deploy",
         R"({"name": "n1", "serviceName": "a.b.c.d", "instanceNumber": 0, "nsAddress": "10.1.1.1"})",
         "container network"},
        {"/netns/deploy",
         R"({"name": "n1", "serviceName": "a.b.c.d", "instanceNumber": 0, "nsAddress": "172.19.1.300"})",
         "nsAddress"},
        {"/register", R"({"subnetwork": "172.19.1.7"})", "host bits"},
        {"/register", R"({"subnetwork": "192.168.1.0"})", "container network"},
        {"/register", R"({"client_id": "node/1", "cluster_address": "10.0.0.1"})", "client_id"},
        {"/register", R"({"client_id": "node-1", "cluster_address": "10.0.0.1; rm"})",
         "cluster_address"},
        {"/table",
         R"([{"appname": "a", "appns": "b", "servicename": "c", "servicenamespace": "d", "instancenumber": 0,
                      "nodeip": "10.0.0.1", "nodeport": 50103, "nsip": "10.9.9.9", "serviceip": []}])",
         "nsip"},
    }));
    auto answer = api.post(path, body);
    INFO(path << " " << body << " -> " << answer.body);
    CHECK(answer.status == 400);
    CHECK_THAT(answer.error(), Catch::Contains(words));
    CHECK(api.node().calls().empty());
}

TEST_CASE("an oversize body is answered 413 and calls nothing") {
    ApiServerOptions options;
    options.body_limit = 1024;
    ApiHarness api("nm-api-big", options);
    auto path = GENERATE(as<std::string>{}, "/register", "/container/deploy", "/table");
    std::string body = R"({"pid": 5, "serviceName": "a.b.c.d", "instanceNumber": 0, "pad": ")" +
                       std::string(200000, 'x') + "\"}";
    auto answer = api.post(path, body);
    CHECK(answer.status == 413);
    CHECK_THAT(answer.error(), Catch::Contains("1024 bytes"));
    CHECK(api.node().calls().empty());
    // The server still serves after refusing.
    CHECK(api.post("/container/deploy", good_container).status == 200);
}

TEST_CASE("deploys and undeploys before registration are answered 409 and call nothing") {
    ApiHarness api("nm-api-unreg");
    api.node().set_registered(false);
    auto [path, body] = GENERATE(table<std::string, std::string>({
        {"/container/deploy", good_container},
        {"/docker/deploy", R"({"containerId": "abc", "appName": "a.b.c.d", "instanceNumber": 0})"},
        {"/netns/deploy", R"({"name": "n1", "serviceName": "a.b.c.d", "instanceNumber": 0})"},
        {"/container/undeploy", R"({"serviceName": "a.b.c.d", "instanceNumber": 0})"},
        {"/docker/undeploy", R"({"serviceName": "a.b.c.d", "instanceNumber": 0})"},
        {"/netns/undeploy", R"({"serviceName": "a.b.c.d", "instanceNumber": 0})"},
    }));
    auto answer = api.post(path, body);
    CHECK(answer.status == 409);
    CHECK_THAT(answer.error(), Catch::Contains("not registered"));
    CHECK(api.node().calls().empty());
}

TEST_CASE("unknown paths are 404 and wrong methods 405, with an error body") {
    ApiHarness api("nm-api-paths");
    auto missing = api.request("GET", "/nothing");
    CHECK(missing.status == 404);
    CHECK_THAT(missing.error(), Catch::Contains("/nothing"));
    auto wrong = api.request("GET", "/register");
    CHECK(wrong.status == 405);
    CHECK_THAT(wrong.error(), Catch::Contains("POST"));
    auto wrong2 = api.request("PUT", "/table", "[]");
    CHECK(wrong2.status == 405);
    CHECK(api.node().calls().empty());
}

TEST_CASE("DELETE /table checks its query parameters before calling anything") {
    ApiHarness api("nm-api-del");
    for (const std::string query : {"", "?instance=1", "?job=a.b.c", "?job=a.b.c.d&instance=x",
                                    "?job=a.b.c.d&instance=-1", "?job=a.b.c.d&color=red"}) {
        auto answer = api.request("DELETE", "/table" + query);
        INFO(query << " -> " << answer.body);
        CHECK(answer.status == 400);
        CHECK_FALSE(answer.error().empty());
    }
    CHECK(api.node().calls().empty());
}
