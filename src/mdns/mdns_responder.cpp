#include "mdns/mdns_responder.hpp"

#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/multicast.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "mdns/udp_receive.hpp"

namespace nm {

namespace {
using asio::ip::udp;
const asio::ip::address_v4 mdns_group = asio::ip::make_address_v4("224.0.0.251");
}  // namespace

MdnsResponder::MdnsResponder(asio::io_context& io, MdnsOptions options, const NamesIndex& index,
                             DnsStats& stats)
    : io_(io),
      options_(std::move(options)),
      index_(index),
      stats_(stats),
      socket_(io),
      limiter_(options_.rate_limit) {}

MdnsResponder::~MdnsResponder() {
    stop();
    *alive_ = false;
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
    // Other responders on the node (avahi) share the port.
    s.set_option(asio::socket_base::reuse_address(true), ec);
    int one = 1;
    setsockopt(s.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (!o.device.empty() &&
        setsockopt(s.native_handle(), SOL_SOCKET, SO_BINDTODEVICE, o.device.c_str(),
                   static_cast<socklen_t>(o.device.size())) != 0)
        return fail_errno("mDNS: SO_BINDTODEVICE " + o.device, errno);
    s.bind(udp::endpoint(udp::v4(), o.port), ec);
    if (ec)
        return fail(Errc::system,
                    "mDNS: bind to port " + std::to_string(o.port) + ": " + ec.message());
    const auto iface = asio::ip::address_v4(o.address.value);
    s.set_option(asio::ip::multicast::join_group(mdns_group, iface), ec);
    if (ec)
        return fail(Errc::system, "mDNS: join 224.0.0.251 on " + o.device + ": " + ec.message());
    s.set_option(asio::ip::multicast::outbound_interface(iface), ec);
    s.set_option(asio::ip::multicast::hops(255), ec);
    s.set_option(asio::ip::multicast::enable_loopback(false), ec);
    s.non_blocking(true, ec);
    return r;
}

void MdnsResponder::start() {
    asio::co_spawn(io_, loop(), asio::detached);
}

void MdnsResponder::stop() {
    if (stopped_) return;
    stopped_ = true;
    boost::system::error_code ec;
    socket_.close(ec);
}

awaitable<void> MdnsResponder::loop() {
    auto alive = alive_;
    std::vector<uint8_t> buf(9000);
    for (;;) {
        udp::endpoint from;
        auto n = co_await receive_datagram(socket_, asio::buffer(buf), from);
        if (!n || !*alive || stopped_) co_return;
        handle(std::span<const uint8_t>(buf.data(), *n), from);
    }
}

void MdnsResponder::handle(std::span<const uint8_t> message, const udp::endpoint& from) {
    ++stats_.mdns_queries;
    const Ipv4 source{from.address().is_v4() ? from.address().to_v4().to_uint() : 0};
    if (!options_.clients.contains(source) || source == options_.address) {
        stats_.drop(DnsDrop::not_local);
        return;
    }
    if (!limiter_.allow(source)) {
        stats_.drop(DnsDrop::rate_limited);
        return;
    }
    auto query = parse_query(message);
    if (!query) {
        stats_.drop(query.error());
        return;
    }
    // Only our names, only when they have an address: anything else is someone else's to answer.
    auto name = parse_name(query->name);
    if (!name) return;
    const JobNames* job = index_.find(name->job);
    if (!job || !name_exists(*job, *name)) return;
    const uint16_t qtype = query->qtype;
    DnsReply reply;
    reply.owner = answer_name(*job, *name);
    if (qtype == dns_type_a || qtype == dns_type_any) reply.a = addresses(*job, *name);
    if (qtype == dns_type_aaaa || qtype == dns_type_any) reply.aaaa = addresses_v6(*job, *name);
    reply.ttl = options_.ttl;
    if (reply.a.empty() && reply.aaaa.empty()) return;
    const bool legacy = from.port() != options_.port;
    const bool unicast = legacy || (query->qclass & 0x8000) != 0;
    auto wire =
        build_reply(*query, reply, legacy ? ReplyStyle::mdns_legacy : ReplyStyle::mdns_multicast);
    boost::system::error_code ec;
    socket_.send_to(asio::buffer(wire), unicast ? from : udp::endpoint(mdns_group, options_.port),
                    0, ec);
    if (!ec) ++stats_.mdns_answers;
}

}  // namespace nm
