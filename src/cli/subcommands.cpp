#include "cli/subcommands.hpp"

#include <iostream>
#include <string_view>
#include <vector>

#include "cli/logs_command.hpp"
#include "cli/status_command.hpp"
#include "cli/version.hpp"

namespace nm {

std::optional<int> run_subcommand(int argc, const char* const* argv) {
    if (argc < 2) return std::nullopt;
    std::string_view command = argv[1];
    std::vector<std::string_view> args(argv + 2, argv + argc);
    if (command == "status") return run_status(args);
    if (command == "logs") return run_logs(args);
    if (command == "version") {
        std::cout << "netmanager " << version() << "\n";
        return 0;
    }
    return std::nullopt;
}

}  // namespace nm
