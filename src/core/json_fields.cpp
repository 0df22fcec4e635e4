#include "core/json_fields.hpp"

#include <boost/json/parse.hpp>

namespace nm::json_fields {

tl::unexpected<Error> bad_field(std::string_view field, std::string text) {
    return fail(Errc::invalid_argument, "field \"" + std::string(field) + "\": " + std::move(text));
}

std::string_view kind_of(const json::value& value) {
    switch (value.kind()) {
        case json::kind::null:
            return "null";
        case json::kind::bool_:
            return "a boolean";
        case json::kind::int64:
        case json::kind::uint64:
            return "an integer";
        case json::kind::double_:
            return "a number with a fraction";
        case json::kind::string:
            return "a string";
        case json::kind::array:
            return "an array";
        case json::kind::object:
            return "an object";
    }
    return "?";
}

Result<json::object> parse_object(std::string_view text, std::string_view what) {
    boost::system::error_code ec;
    json::value value = json::parse(text, ec);
    if (ec)
        return fail(Errc::invalid_argument,
                    std::string(what) + " is not valid JSON: " + ec.message());
    if (!value.is_object())
        return fail(Errc::invalid_argument, std::string(what) + " must be a JSON object, got " +
                                                std::string(kind_of(value)));
    return std::move(value.as_object());
}

Result<const json::value*> get_present(const json::object& obj, std::string_view field) {
    auto* value = obj.if_contains(field);
    if (!value || value->is_null()) return bad_field(field, "missing");
    return value;
}

Result<std::optional<std::string>> get_optional_string(const json::object& obj,
                                                       std::string_view field) {
    auto it = obj.find(field);
    if (it == obj.end() || it->value().is_null()) return std::optional<std::string>{};
    if (!it->value().is_string())
        return bad_field(field, "expected a string, got " + std::string(kind_of(it->value())));
    return std::optional<std::string>{std::string(it->value().as_string())};
}

Result<std::string> get_string(const json::object& obj, std::string_view field) {
    auto value = get_optional_string(obj, field);
    if (!value) return tl::unexpected(value.error());
    if (!*value) return bad_field(field, "missing");
    return std::move(**value);
}

Result<std::optional<int64_t>> get_optional_int(const json::object& obj, std::string_view field,
                                                int64_t min, int64_t max) {
    auto it = obj.find(field);
    if (it == obj.end() || it->value().is_null()) return std::optional<int64_t>{};
    const json::value& v = it->value();
    int64_t n = 0;
    if (v.is_int64()) {
        n = v.as_int64();
    } else if (v.is_uint64()) {
        if (v.as_uint64() > static_cast<uint64_t>(max))
            return bad_field(field, "must be at most " + std::to_string(max));
        n = static_cast<int64_t>(v.as_uint64());
    } else {
        return bad_field(field, "expected an integer, got " + std::string(kind_of(v)));
    }
    if (n < min || n > max)
        return bad_field(field, "must be between " + std::to_string(min) + " and " +
                                    std::to_string(max) + ", got " + std::to_string(n));
    return std::optional<int64_t>{n};
}

Result<int64_t> get_int(const json::object& obj, std::string_view field, int64_t min, int64_t max) {
    auto value = get_optional_int(obj, field, min, max);
    if (!value) return tl::unexpected(value.error());
    if (!*value) return bad_field(field, "missing");
    return **value;
}

Result<std::optional<Ipv4>> get_optional_ipv4(const json::object& obj, std::string_view field) {
    auto text = get_optional_string(obj, field);
    if (!text) return tl::unexpected(text.error());
    if (!*text) return std::optional<Ipv4>{};
    auto ip = Ipv4::parse(**text);
    if (!ip) return bad_field(field, "not an IPv4 address: '" + **text + "'");
    return std::optional<Ipv4>{*ip};
}

Result<Ipv4> get_ipv4(const json::object& obj, std::string_view field) {
    auto ip = get_optional_ipv4(obj, field);
    if (!ip) return tl::unexpected(ip.error());
    if (!*ip) return bad_field(field, "missing");
    return **ip;
}

}  // namespace nm::json_fields
