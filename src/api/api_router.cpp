#include "api/api_router.hpp"

// GCC 12 misreads Asio's coroutine frame allocator as new/delete mismatched when a coroutine
// with many co_await points is inlined (a known false positive of -Wmismatched-new-delete).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <boost/json/parse.hpp>

#include "core/log.hpp"

namespace nm {

namespace json = boost::json;

namespace {
constexpr std::string_view subsystem = "api";

// Paths and the methods each accepts, for 404 versus 405.
struct Route {
    std::string_view path, methods;
};
constexpr Route routes[] = {
    {"/register", "POST"},           {"/docker/deploy", "POST"},
    {"/docker/undeploy", "POST"},    {"/container/deploy", "POST"},
    {"/container/undeploy", "POST"}, {"/netns/deploy", "POST"},
    {"/netns/undeploy", "POST"},     {"/status", "GET"},
    {"/table", "GET, POST, DELETE"}, {"/metrics", "GET"},
    {"/unikernel/deploy", "POST"},   {"/unikernel/undeploy", "POST"},
};

ApiResponse not_registered() {
    return error_response(
        409,
        "the node is not registered yet: POST /register first (or start the agent with "
        "--subnet for standalone mode)");
}

json::object deploy_answer(const DeployResult& result) {
    return json::object{{"serviceName", result.service_name},
                        {"nsAddress", result.ns_address.to_string()},
                        {"nsAddressv6", result.ns_address_v6}};
}
}  // namespace

awaitable<ApiResponse> ApiRouter::deploy(Result<DeployRequest> parsed) {
    if (!parsed) co_return error_response(parsed.error());
    if (!node_.registered()) co_return not_registered();
    DeployRequest request = std::move(*parsed);
    if (request.kind == DeployKind::docker) {
        auto pid = co_await docker_.container_pid(request.container_id);
        if (!pid) co_return error_response(pid.error());
        request.pid = *pid;
    }
    auto result = co_await node_.deploy(std::move(request));
    if (!result) co_return error_response(result.error());
    co_return json_response(deploy_answer(*result));
}

awaitable<ApiResponse> ApiRouter::undeploy(Result<UndeployRequest> parsed) {
    if (!parsed) co_return error_response(parsed.error());
    if (!node_.registered()) co_return not_registered();
    const DeployKind kind = parsed->kind;
    auto result = co_await node_.undeploy(std::move(*parsed));
    // The reference answers 200 for an instance it does not know (containers and unikernels);
    // our own /netns/undeploy says 404.
    if (!result && kind != DeployKind::netns && result.error().code == Errc::not_found) {
        NM_LOG(info, subsystem) << "undeploy: nothing to remove, " << result.error().message
                                << "; answered 200 as the reference does";
        co_return json_response(json::object{});
    }
    if (!result) co_return error_response(result.error());
    co_return json_response(json::object{});
}

awaitable<ApiResponse> ApiRouter::handle(ApiRequest req) {
    std::string_view target = req.target;
    auto question = target.find('?');
    std::string_view path = target.substr(0, question);
    std::string_view query =
        question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);
    const std::string& m = req.method;

    if (m == "POST" && path == "/register") {
        auto parsed = parse_register_body(req.body, networks_);
        if (!parsed) co_return error_response(parsed.error());
        auto result = co_await node_.register_node(std::move(*parsed));
        if (!result) co_return error_response(result.error());
        co_return json_response(json::object{{"status", "registered"}});
    }
    if (m == "POST" && path == "/docker/deploy")
        co_return co_await deploy(parse_docker_deploy_body(req.body, networks_));
    if (m == "POST" && path == "/container/deploy")
        co_return co_await deploy(parse_container_deploy_body(req.body));
    if (m == "POST" && path == "/netns/deploy")
        co_return co_await deploy(parse_netns_deploy_body(req.body, networks_));
    if (m == "POST" && path == "/unikernel/deploy")
        co_return co_await deploy(parse_unikernel_deploy_body(req.body));
    if (m == "POST" && path == "/docker/undeploy")
        co_return co_await undeploy(parse_undeploy_body(req.body, DeployKind::docker));
    if (m == "POST" && path == "/container/undeploy")
        co_return co_await undeploy(parse_undeploy_body(req.body, DeployKind::container));
    if (m == "POST" && path == "/netns/undeploy")
        co_return co_await undeploy(parse_undeploy_body(req.body, DeployKind::netns));
    if (m == "POST" && path == "/unikernel/undeploy")
        co_return co_await undeploy(parse_undeploy_body(req.body, DeployKind::unikernel));
    if (m == "GET" && path == "/status") {
        auto status = co_await node_.status();
        if (!status) co_return error_response(status.error());
        co_return json_response(*status);
    }
    if (m == "GET" && path == "/table") {
        auto table = co_await node_.table();
        if (!table) co_return error_response(table.error());
        co_return json_response(*table);
    }
    if (m == "GET" && path == "/metrics") {
        auto text = co_await node_.metrics();
        if (!text) co_return error_response(text.error());
        ApiResponse r;
        r.body = std::move(*text);
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        co_return r;
    }
    if (m == "POST" && path == "/table") {
        auto entries = parse_table_entries_body(req.body, networks_);
        if (!entries) co_return error_response(entries.error());
        auto added = co_await node_.add_table_entries(std::move(*entries));
        if (!added) co_return error_response(added.error());
        co_return json_response(json::object{{"added", *added}});
    }
    if (m == "DELETE" && path == "/table") {
        auto parsed = parse_table_remove_query(query);
        if (!parsed) co_return error_response(parsed.error());
        auto removed = co_await node_.remove_table_entries(std::move(*parsed));
        if (!removed) co_return error_response(removed.error());
        co_return json_response(json::object{{"removed", *removed}});
    }
    for (const auto& route : routes) {
        if (route.path == path) {
            auto r = error_response(405, "method " + m + " is not allowed on " + std::string(path) +
                                             " (allowed: " + std::string(route.methods) + ")");
            r.allow = route.methods;
            co_return r;
        }
    }
    co_return error_response(404, "no such endpoint: " + m + " " + std::string(path));
}

}  // namespace nm
