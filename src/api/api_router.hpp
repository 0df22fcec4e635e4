#pragma once
// Maps one HTTP request to one NodeControl call: validate the body, check the node's state,
// call, and turn the result into a response. Independent of the transport.
#include <string>
#include <string_view>

#include "api/api_response.hpp"
#include "api/docker_engine.hpp"
#include "api/node_control.hpp"
#include "api/request_parsers.hpp"

namespace nm {

struct ApiRequest {
    std::string method;  // "GET", "POST", ...
    std::string target;  // path and query: "/table?job=a.b.c.d"
    std::string body;
};

class ApiRouter {
  public:
    ApiRouter(NodeControl& node, DockerEngine& docker, Networks networks)
        : node_(node), docker_(docker), networks_(networks) {}

    awaitable<ApiResponse> handle(ApiRequest request);

  private:
    awaitable<ApiResponse> deploy(Result<DeployRequest> parsed);
    awaitable<ApiResponse> undeploy(Result<UndeployRequest> parsed);

    NodeControl& node_;
    DockerEngine& docker_;
    Networks networks_;
};

}  // namespace nm
