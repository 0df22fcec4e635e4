#pragma once
// One line per event: time, level, shard, subsystem, text.
//   NM_LOG(info, "env") << "created namespace " << name;
#include <sstream>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/parse.hpp"

namespace nm {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

void set_log_level(LogLevel level);
LogLevel log_level();
inline constexpr Named<LogLevel> log_level_names[] = {{"debug", LogLevel::debug},
                                                      {"info", LogLevel::info},
                                                      {"warn", LogLevel::warn},
                                                      {"error", LogLevel::error},
                                                      {"off", LogLevel::off}};

// From now on every line (and anything else written to standard error) is appended to `path`,
// created with mode 0640 (and its folder with 0755) when missing. Call before threads start.
Result<void> log_to_file(const std::string& path);

class LogLine {
  public:
    LogLine(LogLevel level, std::string_view subsystem);
    ~LogLine();
    LogLine(const LogLine&) = delete;
    LogLine& operator=(const LogLine&) = delete;

    template <class T>
    LogLine& operator<<(const T& value) {
        text_ << value;
        return *this;
    }

  private:
    LogLevel level_;
    std::string_view subsystem_;
    std::ostringstream text_;
};

}  // namespace nm

// A for-statement rather than if/else, so NM_LOG under an unbraced if draws no warning.
#define NM_LOG(level, subsystem)                                                     \
    for (bool nm_log_once = ::nm::LogLevel::level >= ::nm::log_level(); nm_log_once; \
         nm_log_once = false)                                                        \
    ::nm::LogLine(::nm::LogLevel::level, subsystem)
