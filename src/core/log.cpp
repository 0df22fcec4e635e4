#include "core/log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "core/shard.hpp"

namespace nm {
namespace {
std::atomic<LogLevel> current_level{LogLevel::info};
constexpr const char* level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
}  // namespace

void set_log_level(LogLevel level) {
    current_level.store(level);
}
LogLevel log_level() {
    return current_level.load(std::memory_order_relaxed);
}

Result<void> log_to_file(const std::string& path) {
    if (auto slash = path.rfind('/'); slash != std::string::npos && slash > 0)
        ::mkdir(path.substr(0, slash).c_str(), 0755);  // one level, as /var/log/netmanager
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) return fail_errno("cannot open log file " + path, errno);
    int rc = ::dup2(fd, STDERR_FILENO);
    int err = errno;
    ::close(fd);
    if (rc < 0) return fail_errno("cannot log to " + path, err);
    return {};
}

LogLine::LogLine(LogLevel level, std::string_view subsystem)
    : level_(level), subsystem_(subsystem) {}

LogLine::~LogLine() {
    using namespace std::chrono;
    auto now = system_clock::now();
    std::time_t secs = system_clock::to_time_t(now);
    auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
    int shard = current_shard();
    char where[16];
    if (shard >= 0)
        std::snprintf(where, sizeof where, "s%d", shard);
    else
        std::snprintf(where, sizeof where, "main");
    // One fprintf per line keeps lines from different shards whole.
    std::fprintf(stderr, "%s.%03lld %-5s [%s] %.*s: %s\n", stamp, static_cast<long long>(ms),
                 level_names[static_cast<int>(level_)], where, static_cast<int>(subsystem_.size()),
                 subsystem_.data(), text_.str().c_str());
}

}  // namespace nm
