#pragma once
// The reference agent's operational commands: `netmanager status|logs|version`. Anything else on
// the command line starts the agent.
#include <optional>

namespace nm {

// The exit code when argv names a subcommand (which then ran), none when it is the agent's.
std::optional<int> run_subcommand(int argc, const char* const* argv);

}  // namespace nm
