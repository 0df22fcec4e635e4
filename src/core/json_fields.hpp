#pragma once
// Field-by-field reading of JSON objects from the network, with errors that name the field
// ("field \"pid\": expected an integer, got a string"). Used by the table, the cluster link and the
// API.
#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "core/error.hpp"

namespace nm::json_fields {

namespace json = boost::json;

// The text must be one JSON object. `what` names it in the message ("request body").
Result<json::object> parse_object(std::string_view text, std::string_view what);

Result<std::string> get_string(const json::object& obj, std::string_view field);
// Absent or null: nullopt. Present with another type: error.
Result<std::optional<std::string>> get_optional_string(const json::object& obj,
                                                       std::string_view field);

// An integer (a JSON number without fraction) within [min, max].
Result<int64_t> get_int(const json::object& obj, std::string_view field, int64_t min, int64_t max);
Result<std::optional<int64_t>> get_optional_int(const json::object& obj, std::string_view field,
                                                int64_t min, int64_t max);

Result<Ipv4> get_ipv4(const json::object& obj, std::string_view field);
Result<std::optional<Ipv4>> get_optional_ipv4(const json::object& obj, std::string_view field);

// A field that must be present and not null, of any type.
Result<const json::value*> get_present(const json::object& obj, std::string_view field);

// An error naming the field: field "nodeport": <text>.
tl::unexpected<Error> bad_field(std::string_view field, std::string text);

// The JSON type of a value in words ("a string", "an object", ...), for messages.
std::string_view kind_of(const json::value& value);

}  // namespace nm::json_fields
