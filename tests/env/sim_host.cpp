#include "sim_host.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "env/netns.hpp"

namespace nm::test {

std::string unique_prefix(const std::string& tag) {
    return tag + std::to_string(::getpid() % 1000000);
}

int sh(const std::string& command) {
    int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string sh_out(const std::string& command) {
    std::string out;
    FILE* p = ::popen(command.c_str(), "r");
    if (!p) return out;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    ::pclose(p);
    return out;
}

namespace {

int open_ns(const std::string& ns) {
    std::string path = ns.starts_with("/") ? ns : "/run/netns/" + ns;
    return ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
}

}  // namespace

SimHost::SimHost(std::string name) : name_(std::move(name)) {
    if (sh("ip netns add " + name_) != 0)
        throw std::runtime_error("ip netns add " + name_ + " failed");
    sh("ip -n " + name_ + " link set lo up");
    worker_ = std::thread([this] { loop(); });
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return entered_ || !enter_error_.empty(); });
    if (!enter_error_.empty()) {
        lock.unlock();
        worker_.join();
        sh("ip netns del " + name_);
        throw std::runtime_error(enter_error_);
    }
}

SimHost::~SimHost() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
    sh("ip netns del " + name_ + " 2>/dev/null");
}

void SimHost::post(std::function<void()> job) {
    {
        std::lock_guard lock(mutex_);
        jobs_.push_back(std::move(job));
    }
    cv_.notify_all();
}

void SimHost::loop() {
    int fd = open_ns(name_);
    bool ok = fd >= 0 && ::setns(fd, CLONE_NEWNET) == 0;
    if (fd >= 0) ::close(fd);
    {
        std::lock_guard lock(mutex_);
        if (ok)
            entered_ = true;
        else
            enter_error_ = "cannot enter " + name_ + ": " + std::strerror(errno);
    }
    cv_.notify_all();
    if (!ok) return;
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
            if (jobs_.empty()) return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        job();
    }
}

void run_in_netns(const std::string& ns, const std::function<void()>& fn) {
    Fd fd(open_ns(ns));
    if (!fd || !nm::run_in_netns(fd.get(), fn)) throw std::runtime_error("cannot enter " + ns);
}

namespace {

uint16_t icmp_checksum(const void* data, size_t len) {
    const auto* p = static_cast<const uint8_t*>(data);
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2) sum += (p[i] << 8) | p[i + 1];
    if (len & 1) sum += p[len - 1] << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return htons(static_cast<uint16_t>(~sum));
}

}  // namespace

bool ping(const std::string& ns, const std::string& dst) {
    bool answered = false;
    run_in_netns(ns, [&] {
        int s = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
        if (s < 0) return;
        sockaddr_in to{};
        to.sin_family = AF_INET;
        ::inet_pton(AF_INET, dst.c_str(), &to.sin_addr);
        icmphdr echo{};
        echo.type = ICMP_ECHO;
        echo.un.echo.id = htons(static_cast<uint16_t>(::getpid()));
        echo.un.echo.sequence = htons(1);
        echo.checksum = icmp_checksum(&echo, sizeof echo);
        for (int attempt = 0; attempt < 3 && !answered; ++attempt) {
            ::sendto(s, &echo, sizeof echo, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
            pollfd pfd{s, POLLIN, 0};
            while (::poll(&pfd, 1, 1000) > 0) {
                char buf[1500];
                sockaddr_in from{};
                socklen_t flen = sizeof from;
                ssize_t n =
                    ::recvfrom(s, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
                if (n < 28 || from.sin_addr.s_addr != to.sin_addr.s_addr) continue;
                size_t ihl = (buf[0] & 0x0f) * 4u;
                auto* reply = reinterpret_cast<icmphdr*>(buf + ihl);
                if (reply->type == ICMP_ECHOREPLY && reply->un.echo.id == echo.un.echo.id) {
                    answered = true;
                    break;
                }
            }
        }
        ::close(s);
    });
    return answered;
}

bool tcp_roundtrip(const std::string& from, const std::string& to, const std::string& dst, int port,
                   int listen_port) {
    if (listen_port == 0) listen_port = port;
    std::atomic<int> listener{-1};
    std::promise<void> listening;
    std::string received;
    std::thread server([&] {
        try {
            run_in_netns(to, [&] {
                int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                int one = 1;
                ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
                sockaddr_in addr{};
                addr.sin_family = AF_INET;
                addr.sin_port = htons(static_cast<uint16_t>(listen_port));
                ::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
                ::listen(s, 1);
                listener = s;
                listening.set_value();
                pollfd pfd{s, POLLIN, 0};
                if (::poll(&pfd, 1, 3000) > 0) {
                    int c = ::accept(s, nullptr, nullptr);
                    char buf[16] = {};
                    pollfd cp{c, POLLIN, 0};
                    if (::poll(&cp, 1, 3000) > 0) {
                        ssize_t n = ::read(c, buf, sizeof buf);
                        if (n > 0) received.assign(buf, static_cast<size_t>(n));
                    }
                    ::close(c);
                }
                ::close(s);
            });
        } catch (...) {
            listening.set_value();
        }
    });
    listening.get_future().wait();
    bool sent = false;
    run_in_netns(from, [&] {
        int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(port));
        ::inet_pton(AF_INET, dst.c_str(), &addr.sin_addr);
        timeval tv{3, 0};
        ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
            sent = ::write(c, "hello", 5) == 5;
        ::close(c);
    });
    server.join();
    return sent && received == "hello";
}

}  // namespace nm::test
