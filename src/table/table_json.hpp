#pragma once
// Translation table entries as JSON, with protocol.md's field names (table files, GET /table):
// {"appname","appns","servicename","servicenamespace","instancenumber","nodeip","nodeport",
//  "nsip","nsipv6","serviceip":[{"IpType":"RR","Address":"172.30.0.4","Address_v6":"fdff::4"}]}
// nsipv6 and Address_v6 are optional: absent, null or "" is none, written back as "".
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "table/entry.hpp"

namespace nm {

boost::json::value to_json(const TableEntry& entry);
boost::json::value to_json(const std::vector<TableEntry>& entries);

// One entry object. Errors name the field as core/json_fields.hpp does:
// field "nodeport": must be between 1 and 65535, got 70000.
// Checks types and formats only; validate() checks the networks.
Result<TableEntry> entry_from_json(const boost::json::value& value);
// An array of entry objects (or a single object). Errors say which: "entry 3: nsip: ...".
Result<std::vector<TableEntry>> entries_from_json(const boost::json::value& value);

namespace json_fields {
// A list of {"IpType": "RR"|"Closest"|"InstanceNumber", "Address": "a.b.c.d", "Address_v6"
// (optional)}; absent: empty.
Result<std::vector<ServiceIp>> get_service_ips(const boost::json::object& obj,
                                               std::string_view field);
}  // namespace json_fields

}  // namespace nm
