#include "tunnel/tun_device.hpp"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/log.hpp"
#include "tunnel/flow_owner.hpp"

namespace nm {
namespace {

Result<int> open_queue(const std::string& name, bool vnet_hdr) {
    const int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return fail_errno("open /dev/net/tun (is the tun module loaded?)", errno);
    ifreq request{};
    std::memcpy(request.ifr_name, name.data(), name.size());
    request.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE;
    if (vnet_hdr) request.ifr_flags |= IFF_VNET_HDR;
    if (::ioctl(fd, TUNSETIFF, &request) < 0) {
        const int err = errno;
        ::close(fd);
        return fail_errno(
            "TUNSETIFF " + name +
                (err == EINVAL ? " (a device of that name exists with other flags?)" : ""),
            err);
    }
    return fd;
}

// txqueuelen is the length of the ring each queue holds for us; the default 500/1000 overflows
// with bursts of super-segments.
Result<void> set_txqueuelen(const std::string& name, unsigned length) {
    const int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return fail_errno("socket for SIOCSIFTXQLEN", errno);
    ifreq request{};
    std::memcpy(request.ifr_name, name.data(), name.size());
    request.ifr_qlen = static_cast<int>(length);
    const int rc = ::ioctl(sock, SIOCSIFTXQLEN, &request);
    const int err = errno;
    ::close(sock);
    if (rc < 0) return fail_errno("SIOCSIFTXQLEN " + name, err);
    return {};
}

}  // namespace

std::string TunOffloads::to_string() const {
    std::string text;
    auto add = [&](bool on, const char* word) {
        if (!on) return;
        if (!text.empty()) text += ' ';
        text += word;
    };
    add(vnet_hdr, "vnet_hdr");
    add(flags & tun_offload::csum, "csum");
    add(flags & tun_offload::tso4, "tso4");
    add(flags & tun_offload::tso6, "tso6");
    add(flags & tun_offload::tso_ecn, "tso_ecn");
    add(flags & tun_offload::uso4, "uso4");
    add(flags & tun_offload::uso6, "uso6");
    return text.empty() ? "off" : text;
}

unsigned negotiate_offloads(unsigned wanted, const std::function<bool(unsigned)>& try_set) {
    if (try_set(wanted)) return wanted;
    // TSO needs CSUM, so CSUM goes first; USO4 and USO6 are one group for the kernel.
    static constexpr unsigned groups[] = {tun_offload::csum,
                                          tun_offload::tso4 | tun_offload::tso_ecn,
                                          tun_offload::tso6, tun_offload::uso4 | tun_offload::uso6};
    unsigned accepted = 0;
    bool last_call_accepted = true;
    for (unsigned group : groups) {
        const unsigned want = group & wanted;
        if (!want) continue;
        last_call_accepted = try_set(accepted | want);
        if (last_call_accepted) accepted |= want;
        // Every other offload needs checksum offload: no point asking further.
        if (group == tun_offload::csum && !last_call_accepted) break;
    }
    if (!last_call_accepted) try_set(accepted);  // a refused call may leave the device unchanged
    return accepted;
}

Result<TunDevice> TunDevice::open(const TunOptions& options) {
    if (options.name.empty() || options.name.size() >= IFNAMSIZ)
        return fail(Errc::invalid_argument,
                    "TUN name '" + options.name + "' must be 1 to 15 characters");
    if (options.queues == 0) return fail(Errc::invalid_argument, "TUN needs at least one queue");
    TunDevice device;
    device.name_ = options.name;
    for (unsigned i = 0; i < options.queues; ++i) {
        auto fd = open_queue(options.name, options.offload);
        if (!fd) return tl::unexpected(fd.error());  // the destructor closes earlier queues
        device.fds_.push_back(*fd);
    }
    device.offloads_.vnet_hdr = options.offload;
    if (options.offload) {
        const int fd = device.fds_.front();  // offloads are per device; any queue sets them
        int last_errno = 0;
        device.offloads_.flags = negotiate_offloads(options.wanted, [&](unsigned flags) {
            if (::ioctl(fd, TUNSETOFFLOAD, static_cast<unsigned long>(flags)) == 0) return true;
            last_errno = errno;
            return false;
        });
        if (device.offloads_.flags != options.wanted)
            NM_LOG(info, "tunnel")
                << options.name << ": kernel refused some TUN offloads ("
                << std::strerror(last_errno) << "); using " << device.offloads_.to_string();
    }
    if (options.txqueuelen) {
        if (auto ok = set_txqueuelen(options.name, options.txqueuelen); ok)
            device.txqueuelen_ = options.txqueuelen;
        else
            NM_LOG(warn, "tunnel") << ok.error().message << "; keeping the default queue length";
    }
    return device;
}

TunDevice::TunDevice(TunDevice&& other) noexcept
    : name_(std::move(other.name_)),
      fds_(std::exchange(other.fds_, {})),
      offloads_(other.offloads_),
      txqueuelen_(other.txqueuelen_) {}

TunDevice& TunDevice::operator=(TunDevice&& other) noexcept {
    if (this != &other) {
        for (int fd : fds_)
            if (fd >= 0) ::close(fd);
        name_ = std::move(other.name_);
        fds_ = std::exchange(other.fds_, {});
        offloads_ = other.offloads_;
        txqueuelen_ = other.txqueuelen_;
    }
    return *this;
}

TunDevice::~TunDevice() {
    close_unattached();
}

void TunDevice::close_unattached() {
    for (int& fd : fds_)
        if (fd >= 0) ::close(std::exchange(fd, -1));
}

Result<void> TunDevice::steer_to_owners() {
    const auto shards = static_cast<int32_t>(fds_.size());
    if (shards < 2) return {};
    if (fds_[0] < 0)
        return fail(Errc::invalid_argument, "TUN steering set after a queue was attached");
    auto loaded = load_tun_steering_program(static_cast<unsigned>(shards));
    if (!loaded) return tl::unexpected(loaded.error());
    const int prog = *loaded;
    const int rc = ::ioctl(fds_[0], TUNSETSTEERINGEBPF, &prog);
    const int e = errno;
    ::close(prog);  // the device holds its own reference
    if (rc < 0) return fail_errno("TUNSETSTEERINGEBPF on " + name_, e);
    return {};
}

Result<TunQueue> TunDevice::attach_queue(unsigned i, boost::asio::io_context& context) {
    if (i >= fds_.size() || fds_[i] < 0)
        return fail(Errc::invalid_argument,
                    "TUN queue " + std::to_string(i) + " does not exist or is attached already");
    return TunQueue(context, std::exchange(fds_[i], -1), offloads_.vnet_hdr);
}

}  // namespace nm
