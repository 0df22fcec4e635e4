#include "mdns/mdns_responder.hpp"

#include <net/if.h>
#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/multicast.hpp>
#include <boost/asio/ip/v6_only.hpp>

#include "core/log.hpp"
#include "mdns/udp_receive.hpp"

namespace nm {

namespace {
using asio::ip::udp;
constexpr std::string_view subsystem = "names";
const asio::ip::address_v4 mdns_group = asio::ip::make_address_v4("224.0.0.251");
const asio::ip::address_v6 mdns_group_v6 = asio::ip::make_address_v6("ff02::fb");

// Shares the port with other responders on the node (avahi), hears only the bridge.
Result<void> share_and_bind(udp::socket& s, const std::string& device, const udp::endpoint& at) {
    boost::system::error_code ec;
    s.set_option(asio::socket_base::reuse_address(true), ec);
    int one = 1;
    setsockopt(s.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (auto r = bind_to_device(s.native_handle(), device); !r)
        return fail(r.error().code, "mDNS: " + r.error().message);
    s.bind(at, ec);
    if (ec)
        return fail(Errc::system,
                    "mDNS: bind to port " + std::to_string(at.port()) + ": " + ec.message());
    return {};
}

Ipv6 to_ipv6(const asio::ip::address_v6& a) {
    Ipv6 out;
    auto bytes = a.to_bytes();
    std::copy(bytes.begin(), bytes.end(), out.bytes.begin());
    return out;
}

// The rate limiter's key for a source: IPv4 as it is, IPv6 folded to 32 bits.
Ipv4 limiter_key(const asio::ip::address& a) {
    if (a.is_v4()) return Ipv4{a.to_v4().to_uint()};
    auto b = a.to_v6().to_bytes();
    uint32_t key = 0;
    for (size_t i = 0; i < b.size(); ++i) key ^= uint32_t{b[i]} << (8 * (i % 4));
    return Ipv4{key};
}
}  // namespace

MdnsResponder::MdnsResponder(asio::io_context& io, MdnsOptions options, const NamesIndex& index,
                             DnsStats& stats)
    : io_(io),
      options_(std::move(options)),
      index_(index),
      stats_(stats),
      socket_(io),
      socket6_(io),
      limiter_(options_.rate_limit) {}

MdnsResponder::~MdnsResponder() {
    stop();
}

Result<std::unique_ptr<MdnsResponder>> MdnsResponder::open(asio::io_context& io,
                                                           MdnsOptions options,
                                                           const NamesIndex& index,
                                                           DnsStats& stats) {
    std::unique_ptr<MdnsResponder> r(new MdnsResponder(io, std::move(options), index, stats));
    const auto& o = r->options_;
    auto& s = r->socket_;
    boost::system::error_code ec;
    s.open(udp::v4(), ec);
    if (ec) return fail(Errc::system, "mDNS socket: " + ec.message());
    if (auto b = share_and_bind(s, o.device, udp::endpoint(udp::v4(), o.port)); !b)
        return tl::unexpected(b.error());
    const auto iface = asio::ip::address_v4(o.address.value);
    s.set_option(asio::ip::multicast::join_group(mdns_group, iface), ec);
    if (ec)
        return fail(Errc::system, "mDNS: join 224.0.0.251 on " + o.device + ": " + ec.message());
    s.set_option(asio::ip::multicast::outbound_interface(iface), ec);
    s.set_option(asio::ip::multicast::hops(255), ec);
    s.set_option(asio::ip::multicast::enable_loopback(false), ec);
    s.non_blocking(true, ec);
    if (o.clients_v6) {
        if (auto v6 = r->open_v6(); !v6) {
            NM_LOG(warn, subsystem) << v6.error().message << "; mDNS on IPv4 only";
            r->socket6_.close(ec);
        }
    }
    return r;
}

Result<void> MdnsResponder::open_v6() {
    ifindex_ = options_.device.empty() ? 0 : if_nametoindex(options_.device.c_str());
    if (ifindex_ == 0) return fail(Errc::not_found, "mDNS: no interface " + options_.device);
    auto& s = socket6_;
    boost::system::error_code ec;
    s.open(udp::v6(), ec);
    if (!ec) s.set_option(asio::ip::v6_only(true), ec);
    if (ec) return fail(Errc::system, "mDNS IPv6 socket: " + ec.message());
    if (auto b = share_and_bind(s, options_.device, udp::endpoint(udp::v6(), options_.port)); !b)
        return b;
    s.set_option(asio::ip::multicast::join_group(mdns_group_v6, ifindex_), ec);
    if (ec)
        return fail(Errc::system,
                    "mDNS: join ff02::fb on " + options_.device + ": " + ec.message());
    s.set_option(asio::ip::multicast::outbound_interface(ifindex_), ec);
    s.set_option(asio::ip::multicast::hops(255), ec);
    s.set_option(asio::ip::multicast::enable_loopback(false), ec);
    s.non_blocking(true, ec);
    return {};
}

void MdnsResponder::start() {
    asio::co_spawn(io_, loop(socket_), asio::detached);
    if (socket6_.is_open()) asio::co_spawn(io_, loop(socket6_), asio::detached);
}

void MdnsResponder::stop() {
    boost::system::error_code ec;
    socket_.close(ec);
    socket6_.close(ec);
}

awaitable<void> MdnsResponder::close() {
    stop();
    co_await gate_.close();
}

awaitable<void> MdnsResponder::loop(udp::socket& socket) {
    auto hold = gate_.try_hold();
    if (!hold) co_return;
    std::vector<uint8_t> buf(9000);
    for (;;) {
        udp::endpoint from;
        auto n = co_await receive_datagram(socket, asio::buffer(buf), from);
        if (!n || !socket.is_open()) co_return;
        handle(socket, std::span<const uint8_t>(buf.data(), *n), from);
    }
}

bool MdnsResponder::is_client(const asio::ip::address& source) const {
    if (source.is_v4()) {
        const Ipv4 ip{source.to_v4().to_uint()};
        return options_.clients.contains(ip) && ip != options_.address;
    }
    if (!options_.clients_v6) return false;
    const auto v6 = source.to_v6();
    const Ipv6 ip = to_ipv6(v6);
    return (options_.clients_v6->contains(ip) && ip != options_.clients_v6->host(1)) ||
           v6.is_link_local();
}

void MdnsResponder::handle(udp::socket& socket, std::span<const uint8_t> message,
                           const udp::endpoint& from) {
    ++stats_.mdns_queries;
    if (!is_client(from.address())) {
        stats_.drop(DnsDrop::not_local);
        return;
    }
    if (!limiter_.allow(limiter_key(from.address()))) {
        stats_.drop(DnsDrop::rate_limited);
        return;
    }
    auto questions = parse_mdns_query(message);
    if (!questions) {
        stats_.drop(questions.error());
        return;
    }
    // Only our names, only when they have an address: anything else is someone else's to answer.
    std::vector<DnsQuery> asked;
    std::vector<DnsReply> replies;
    bool all_qu = true;
    for (DnsQuery& q : *questions) {
        auto name = parse_name(q.name);
        if (!name) continue;
        const JobNames* job = index_.find(name->job);
        if (!job || !name_exists(*job, *name)) continue;
        DnsReply reply;
        reply.owner = answer_name(*job, *name);
        if (q.qtype == dns_type_a || q.qtype == dns_type_any) reply.a = addresses(*job, *name);
        if (q.qtype == dns_type_aaaa || q.qtype == dns_type_any)
            reply.aaaa = addresses_v6(*job, *name);
        reply.ttl = options_.ttl;
        if (reply.a.empty() && reply.aaaa.empty()) continue;
        all_qu = all_qu && (q.qclass & 0x8000) != 0;
        asked.push_back(std::move(q));
        replies.push_back(std::move(reply));
    }
    if (asked.empty()) return;
    const bool legacy = from.port() != options_.port;
    const bool unicast = legacy || all_qu;
    auto wire =
        build_reply(asked, replies, legacy ? ReplyStyle::mdns_legacy : ReplyStyle::mdns_multicast);
    udp::endpoint to = from;
    if (!unicast)
        to = from.address().is_v4()
                 ? udp::endpoint(mdns_group, options_.port)
                 : udp::endpoint(asio::ip::address_v6(mdns_group_v6.to_bytes(), ifindex_),
                                 options_.port);
    boost::system::error_code ec;
    socket.send_to(asio::buffer(wire), to, 0, ec);
    if (!ec) ++stats_.mdns_answers;
}

}  // namespace nm
