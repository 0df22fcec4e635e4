#pragma once
// Translation table entries as JSON, with protocol.md's field names (table files, GET /table):
// {"appname","appns","servicename","servicenamespace","instancenumber","nodeip","nodeport",
//  "nsip","serviceip":[{"IpType":"RR","Address":"172.30.0.4"}]}
#include <boost/json/value.hpp>
#include <vector>

#include "core/error.hpp"
#include "tunnel/entry.hpp"

namespace nm {

boost::json::value to_json(const TableEntry& entry);
boost::json::value to_json(const std::vector<TableEntry>& entries);

// One entry object. Errors name the field: "nodeport: must be an integer 1..65535, got 70000".
// Checks types and formats only; validate() checks the networks.
Result<TableEntry> entry_from_json(const boost::json::value& value);
// An array of entry objects (or a single object). Errors say which: "entry 3: nsip: ...".
Result<std::vector<TableEntry>> entries_from_json(const boost::json::value& value);

}  // namespace nm
