#include "api/api_response.hpp"

#include <boost/json/serialize.hpp>

namespace nm {

unsigned http_status_for(Errc code) {
    switch (code) {
        case Errc::invalid_argument:
            return 400;
        case Errc::not_found:
            return 404;
        case Errc::exists:
        case Errc::conflict:
            return 409;
        case Errc::exhausted:
        case Errc::unavailable:
            return 503;
        case Errc::timeout:
            return 504;
        case Errc::system:
            return 500;
    }
    return 500;
}

ApiResponse json_response(const boost::json::value& body, unsigned status) {
    ApiResponse r;
    r.status = status;
    r.body = boost::json::serialize(body) + "\n";
    return r;
}

ApiResponse error_response(unsigned status, const std::string& message) {
    return json_response(boost::json::object{{"error", message}}, status);
}

ApiResponse error_response(const Error& error) {
    return error_response(http_status_for(error.code), error.message);
}

}  // namespace nm
