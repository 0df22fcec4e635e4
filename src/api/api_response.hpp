#pragma once
// What a handler answers: status, body, content type. Errors are {"error": "..."} (protocol.md).
#include <boost/json/value.hpp>
#include <string>

#include "core/error.hpp"

namespace nm {

struct ApiResponse {
    unsigned status = 200;
    std::string body;
    std::string content_type = "application/json";
    std::string allow;             // for 405: the methods the path accepts
    std::string www_authenticate;  // for 401: the scheme the client must use
};

// invalid_argument 400, not_found 404, exists/conflict 409, exhausted/unavailable 503,
// timeout 504, system 500.
unsigned http_status_for(Errc code);

ApiResponse json_response(const boost::json::value& body, unsigned status = 200);
ApiResponse error_response(unsigned status, const std::string& message);
ApiResponse error_response(const Error& error);

}  // namespace nm
