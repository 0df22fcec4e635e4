#include "mdns/dns_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <random>

#include "core/log.hpp"
#include "mdns/ldns.hpp"
#include "mdns/udp_batch.hpp"
#include "mdns/udp_receive.hpp"

namespace nm {

namespace {
using asio::ip::tcp;
using asio::ip::udp;
constexpr size_t udp_batch = 32;  // datagrams per recvmmsg and sendmmsg

asio::ip::address_v4 to_asio(Ipv4 ip) {
    return asio::ip::address_v4(ip.value);
}
}  // namespace

struct DnsServer::Forward {
    explicit Forward(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    std::vector<uint8_t> answer;
    DnsServerAddress sent_to;
};

DnsServer::DnsServer(asio::io_context& io, DnsServerOptions options, NameAnswerer& names,
                     DnsStats& stats)
    : io_(io),
      options_(std::move(options)),
      names_(names),
      stats_(stats),
      udp_(io),
      upstream_(io),
      tcp_(io),
      limiter_(options_.rate_limit),
      next_id_(static_cast<uint16_t>(std::random_device{}())) {}

DnsServer::~DnsServer() {
    stop();
}

Result<std::unique_ptr<DnsServer>> DnsServer::open(asio::io_context& io, DnsServerOptions options,
                                                   NameAnswerer& names, DnsStats& stats) {
    std::unique_ptr<DnsServer> s(new DnsServer(io, std::move(options), names, stats));
    const auto& o = s->options_;
    const std::string where = o.address.to_string() + ":" + std::to_string(o.port);
    boost::system::error_code ec;
    s->udp_.open(udp::v4(), ec);
    if (!ec) s->udp_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) {
        if (auto r = bind_to_device(s->udp_.native_handle(), o.device); !r)
            return tl::unexpected(r.error());
        s->udp_.bind(udp::endpoint(to_asio(o.address), o.port), ec);
    }
    if (ec) return fail(Errc::system, "DNS on UDP " + where + ": " + ec.message());
    s->port_ = s->udp_.local_endpoint().port();
    s->udp_.non_blocking(true, ec);
    s->tcp_.open(tcp::v4(), ec);
    if (!ec) s->tcp_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) {
        if (auto r = bind_to_device(s->tcp_.native_handle(), o.device); !r)
            return tl::unexpected(r.error());
        s->tcp_.bind(tcp::endpoint(to_asio(o.address), s->port_), ec);
    }
    if (!ec) s->tcp_.listen(64, ec);
    if (ec)
        return fail(Errc::system, "DNS on TCP " + o.address.to_string() + ":" +
                                      std::to_string(s->port_) + ": " + ec.message());
    s->upstream_.open(udp::v4(), ec);
    if (!ec) s->upstream_.bind(udp::endpoint(udp::v4(), 0), ec);
    if (!ec) s->upstream_.non_blocking(true, ec);
    if (ec) return fail(Errc::system, "DNS upstream socket: " + ec.message());
    return s;
}

void DnsServer::start() {
    auto ex = io_.get_executor();
    asio::co_spawn(ex, udp_loop(), asio::detached);
    asio::co_spawn(ex, upstream_loop(), asio::detached);
    asio::co_spawn(ex, tcp_accept_loop(), asio::detached);
}

awaitable<void> DnsServer::close() {
    stop();
    co_await gate_.close();
}

void DnsServer::stop() {
    if (stopped_) return;
    stopped_ = true;
    boost::system::error_code ec;
    udp_.close(ec);
    upstream_.close(ec);
    tcp_.close(ec);
    for (auto& [id, f] : forwards_) f->timer.cancel();
    for (tcp::socket* socket : sessions_) socket->close(ec);
}

DnsServer::Step DnsServer::first_step(std::span<const uint8_t> message, Ipv4 source,
                                      std::vector<uint8_t>& reply, DnsQuery& query) {
    // The node itself (its queries to the bridge address come from that address) is no client.
    if (!options_.clients.contains(source) || source == options_.address) {
        stats_.drop(DnsDrop::not_local);
        return Step::drop;
    }
    if (!limiter_.allow(source)) {
        stats_.drop(DnsDrop::rate_limited);
        return Step::drop;
    }
    // A question answered before, while the table stayed as it is: no parse, no encode.
    if (auto plain = scan_plain_query(message); plain && names_.answer_cached(*plain, reply))
        return Step::reply;
    auto parsed = parse_query(message);
    if (!parsed) {
        stats_.drop(parsed.error());
        return Step::drop;
    }
    if (is_local_name(parsed->name)) {
        if (auto now = names_.answer_now(*parsed)) {
            reply = std::move(*now);
            return Step::reply;
        }
    }
    query = std::move(*parsed);
    return Step::wait;
}

awaitable<std::vector<uint8_t>> DnsServer::answer_async(std::vector<uint8_t> message,
                                                        DnsQuery query) {
    if (is_local_name(query.name)) co_return co_await names_.answer(std::move(query));
    co_return co_await forward(std::move(message));
}

awaitable<std::vector<uint8_t>> DnsServer::forward(std::vector<uint8_t> message) {
    if (options_.upstreams.empty()) co_return servfail_for(message);
    if (forwards_.size() >= options_.max_forwards) {
        stats_.drop(DnsDrop::overload);
        co_return servfail_for(message);
    }
    const uint16_t client_id = ldns_read_uint16(message.data());
    uint16_t id = next_id_;
    while (forwards_.contains(id)) ++id;
    next_id_ = static_cast<uint16_t>(id * 40503u + 1);  // hop around the id space
    auto f = std::make_shared<Forward>(io_.get_executor());
    forwards_.emplace(id, f);
    ldns_write_uint16(message.data(), id);
    ++stats_.forwarded;
    // Each upstream in turn until one answers within the timeout.
    for (const DnsServerAddress& upstream : options_.upstreams) {
        if (stopped_) break;
        f->sent_to = upstream;
        boost::system::error_code ec;
        upstream_.send_to(asio::buffer(message), udp::endpoint(to_asio(upstream.ip), upstream.port),
                          0, ec);
        if (ec) continue;
        f->timer.expires_after(options_.forward_timeout);
        co_await f->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (stopped_ || !f->answer.empty()) break;
    }
    forwards_.erase(id);
    if (f->answer.empty()) {
        ++stats_.forward_timeouts;
        ldns_write_uint16(message.data(), client_id);
        co_return servfail_for(message);
    }
    ++stats_.forward_answers;
    ldns_write_uint16(f->answer.data(), client_id);
    co_return std::move(f->answer);
}

awaitable<void> DnsServer::upstream_loop() {
    auto hold = gate_.try_hold();
    if (!hold) co_return;
    std::vector<uint8_t> buf(65535);
    for (;;) {
        udp::endpoint from;
        auto received = co_await receive_datagram(upstream_, asio::buffer(buf), from);
        if (!received || stopped_) co_return;
        const size_t n = *received;
        if (n < LDNS_HEADER_SIZE || !LDNS_QR_WIRE(buf.data())) continue;
        auto it = forwards_.find(ldns_read_uint16(buf.data()));
        if (it == forwards_.end()) continue;
        Forward& f = *it->second;
        // Only the upstream this query went to may answer it.
        if (!from.address().is_v4() || from.address().to_v4().to_uint() != f.sent_to.ip.value ||
            from.port() != f.sent_to.port)
            continue;
        f.answer.assign(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
        f.timer.cancel();
    }
}

awaitable<void> DnsServer::udp_loop() {
    auto hold = gate_.try_hold();
    if (!hold) co_return;
    UdpBatch batch(udp_batch, 65535);  // any UDP datagram fits
    const int fd = udp_.native_handle();
    for (;;) {
        boost::system::error_code ec;
        co_await udp_.async_wait(udp::socket::wait_read,
                                 asio::redirect_error(asio::use_awaitable, ec));
        if (stopped_ || ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor)
            co_return;
        // Every datagram already queued, a batch at a time, until none is left: the wait above
        // wakes only for new ones. An error reported on the socket is cleared by reporting it.
        for (int errors = 0; errors < 8;) {
            const int n = batch.receive(fd);
            if (n == 0) break;
            if (n < 0) {
                ++errors;
                continue;
            }
            for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
                ++stats_.queries_udp;
                DnsQuery query;
                switch (first_step(batch.datagram(i), batch.source_ip(i), batch.reply(i), query)) {
                    case Step::reply:
                        batch.queue_reply(i);
                        break;
                    case Step::drop:
                        break;
                    case Step::wait:
                        answer_later(
                            batch.datagram(i), std::move(query),
                            udp::endpoint(to_asio(batch.source_ip(i)), batch.source_port(i)));
                        break;
                }
            }
            batch.flush(fd);
        }
    }
}

void DnsServer::answer_later(std::span<const uint8_t> message, DnsQuery query,
                             const udp::endpoint& client) {
    asio::co_spawn(
        io_,
        [this, client, query = std::move(query),
         message =
             std::vector<uint8_t>(message.begin(), message.end())]() mutable -> awaitable<void> {
            auto hold = gate_.try_hold();
            if (!hold) co_return;
            auto reply = co_await answer_async(std::move(message), std::move(query));
            if (stopped_ || reply.empty()) co_return;
            boost::system::error_code ec;
            udp_.send_to(asio::buffer(reply), client, 0, ec);
        },
        asio::detached);
}

awaitable<void> DnsServer::tcp_accept_loop() {
    auto hold = gate_.try_hold();
    if (!hold) co_return;
    for (;;) {
        boost::system::error_code ec;
        tcp::socket socket =
            co_await tcp_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (stopped_) co_return;
        if (ec) {
            if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor)
                co_return;
            continue;
        }
        auto peer = socket.remote_endpoint(ec);
        Ipv4 source{!ec && peer.address().is_v4() ? peer.address().to_v4().to_uint() : 0};
        if (!options_.clients.contains(source) || source == options_.address) {
            stats_.drop(DnsDrop::not_local);
            continue;  // closed as it goes out of scope
        }
        if (sessions_.size() >= options_.max_tcp) {
            stats_.drop(DnsDrop::overload);
            continue;
        }
        asio::co_spawn(io_, tcp_session(std::move(socket)), asio::detached);
    }
}

awaitable<void> DnsServer::tcp_session(tcp::socket socket) {
    auto hold = gate_.try_hold();
    if (!hold) co_return;
    boost::system::error_code ec;
    auto peer = socket.remote_endpoint(ec);
    if (ec) co_return;
    sessions_.insert(&socket);  // until the end below: every way out of the loop gets there
    const Ipv4 source{peer.address().to_v4().to_uint()};
    // Idle connections are closed: the timer closes the socket, pending reads then fail.
    auto idle = std::make_shared<asio::steady_timer>(io_);
    auto arm = [&] {
        idle->expires_after(options_.tcp_idle);
        idle->async_wait([&socket, idle](boost::system::error_code e) {
            if (!e) {
                boost::system::error_code ignored;
                socket.close(ignored);
            }
        });
    };
    std::vector<uint8_t> message;
    for (;;) {
        arm();
        uint8_t len[2];
        co_await asio::async_read(socket, asio::buffer(len),
                                  asio::redirect_error(asio::use_awaitable, ec));
        if (ec || stopped_) break;
        message.resize(size_t{len[0]} << 8 | len[1]);
        co_await asio::async_read(socket, asio::buffer(message),
                                  asio::redirect_error(asio::use_awaitable, ec));
        if (ec || stopped_) break;
        ++stats_.queries_tcp;
        std::vector<uint8_t> reply;
        DnsQuery query;
        Step step = first_step(message, source, reply, query);
        if (step == Step::drop) break;
        if (step == Step::wait) reply = co_await answer_async(message, std::move(query));
        if (stopped_ || reply.empty()) break;
        uint8_t out_len[2] = {static_cast<uint8_t>(reply.size() >> 8),
                              static_cast<uint8_t>(reply.size())};
        std::array<asio::const_buffer, 2> out{asio::buffer(out_len), asio::buffer(reply)};
        co_await asio::async_write(socket, out, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
    }
    idle->cancel();
    sessions_.erase(&socket);
    socket.close(ec);
}

}  // namespace nm
