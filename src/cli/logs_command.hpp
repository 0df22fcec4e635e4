#pragma once
// `netmanager logs`: the agent logs to standard error. Run by systemd (netmanager.service) that
// is the journal; run by hand with --log-file, that file. This command shows whichever the host
// has: the explicit --log-file, else the journal of netmanager.service when systemd runs, else
// default_log_file when it exists.
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace nm {

inline constexpr std::string_view default_log_file = "/var/log/netmanager/netmanager.log";
inline constexpr std::string_view service_unit = "netmanager.service";

struct LogsOptions {
    bool follow = false;
    unsigned lines = 100;
    std::string log_file{};  // empty: choose as above
};

// What the host offers.
struct LogHost {
    bool journal = false;  // systemd runs (so the unit's output is in its journal)
    std::string default_log_file{nm::default_log_file};
};
LogHost this_log_host();

// Arguments after `logs`. Errors name the flag.
Result<LogsOptions> parse_logs_args(std::span<const std::string_view> args);

// The program (argv) that shows the log: journalctl for the unit, or tail of the file. not_found
// with a message saying where the agent's log goes when the host has neither.
Result<std::vector<std::string>> log_viewer(const LogsOptions& options, const LogHost& host);

// The whole subcommand: replaces this process with the viewer; 1 when there is no log to show,
// 2 bad arguments.
int run_logs(std::span<const std::string_view> args);

}  // namespace nm
