#include "cli/logs_command.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "cli/subcommand_args.hpp"
#include "core/parse.hpp"

namespace nm {

namespace {

constexpr std::string_view logs_help = R"(Usage: netmanager logs [-f] [-n N] [--log-file PATH]

Shows the agent's log: with --log-file, that file; else, when systemd runs, the journal of
netmanager.service (journalctl -u netmanager.service); else /var/log/netmanager/netmanager.log,
the file an agent started with `--log-file` writes by convention.

  -f, --follow        keep printing new lines as they come (Ctrl-C stops)
  -n, --lines N       how many of the last lines to show first (default 100)
      --log-file PATH show this file (the path given to the agent's --log-file)
)";

}  // namespace

LogHost this_log_host() {
    std::error_code ec;
    return LogHost{.journal = std::filesystem::is_directory("/run/systemd/system", ec)};
}

Result<LogsOptions> parse_logs_args(std::span<const std::string_view> args) {
    LogsOptions options;
    for (size_t i = 0; i < args.size(); ++i) {
        std::string_view a = args[i];
        if (a == "-f" || a == "--follow") {
            options.follow = true;
        } else if (a == "-n" || a == "--lines" || a == "--log-file") {
            if (i + 1 >= args.size() || args[i + 1].empty())
                return fail(Errc::invalid_argument, "flag " + std::string(a) + ": needs a value");
            std::string_view value = args[++i];
            if (a == "--log-file") {
                options.log_file = std::string(value);
                continue;
            }
            auto n = parse_whole<unsigned>(value);
            if (!n || *n > 1000000)
                return fail(Errc::invalid_argument, "flag " + std::string(a) +
                                                        ": expected a number from 0 to 1000000, "
                                                        "got '" +
                                                        excerpt(value) + "'");
            options.lines = *n;
        } else {
            return fail(Errc::invalid_argument,
                        "logs: unknown argument '" + excerpt(a) + "' (see logs --help)");
        }
    }
    return options;
}

Result<std::vector<std::string>> log_viewer(const LogsOptions& options, const LogHost& host) {
    auto tail = [&](const std::string& file) {
        std::vector<std::string> argv{"tail", "-n", std::to_string(options.lines)};
        if (options.follow) argv.push_back("-F");  // -F: keeps following across log rotation
        argv.push_back(file);
        return argv;
    };
    std::error_code ec;
    if (!options.log_file.empty()) {
        if (!std::filesystem::is_regular_file(options.log_file, ec))
            return fail(Errc::not_found, "no log file at " + options.log_file);
        return tail(options.log_file);
    }
    if (host.journal) {
        std::vector<std::string> argv{"journalctl", "--unit",  std::string(service_unit),
                                      "--no-pager", "--lines", std::to_string(options.lines)};
        if (options.follow) argv.push_back("--follow");
        return argv;
    }
    if (std::filesystem::is_regular_file(host.default_log_file, ec))
        return tail(host.default_log_file);
    return fail(Errc::not_found,
                "no log to show: systemd does not run here (its journal would hold the log of "
                "netmanager.service) and there is no " +
                    host.default_log_file +
                    ". An agent started by hand logs to its standard error; start it with "
                    "`--log-file " +
                    host.default_log_file + "` to read its log here, or pass --log-file PATH.");
}

int run_logs(std::span<const std::string_view> args) {
    auto options = subcommand_options(args, logs_help, parse_logs_args);
    if (!options) return options.error();
    auto viewer = log_viewer(*options, this_log_host());
    if (!viewer) {
        std::fprintf(stderr, "netmanager logs: %s\n", viewer.error().message.c_str());
        return 1;
    }
    std::vector<char*> argv;
    for (auto& a : *viewer) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::cout.flush();
    execvp(argv[0], argv.data());
    std::fprintf(stderr, "netmanager logs: cannot run %s: %s\n", argv[0], std::strerror(errno));
    return 1;
}

}  // namespace nm
