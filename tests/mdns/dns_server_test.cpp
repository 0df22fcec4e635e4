// The names server on real sockets (loopback): answers from the table, table queries by name
// (awaited, coalesced, negative-cached), forwarding to an upstream, rate limits, strangers.
#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <thread>

#include "mdns/name_service.hpp"
#include "mdns_testkit.hpp"
#include "table/table_writer.hpp"

using namespace nm;
using namespace nm::testkit;
using namespace std::chrono_literals;
using asio::ip::udp;

namespace {

struct Harness {
    explicit Harness(std::function<void(NameServiceOptions&)> tweak = {}) {
        NameServiceOptions o;
        o.dns.address = ip("127.0.0.2");  // clients send from 127.0.0.1
        o.dns.port = 0;
        o.dns.clients = *Cidr::parse("127.0.0.0/8");
        o.dns.rate_limit = 0;
        o.mdns = false;
        if (tweak) tweak(o);
        auto started = NameService::start(
            io, writer,
            [this](std::string job) -> awaitable<Result<std::vector<TableEntry>>> {
                ++find_calls;
                asked.push_back(job);
                asio::steady_timer t(io, find_delay);
                finding = &t;  // a test may end the wait early
                boost::system::error_code ec;
                co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
                finding = nullptr;
                if (job_known) {
                    std::vector<TableEntry> entries = {web(0), web(1)};
                    (void)writer.replace_job("App.ns.Web.default", entries);
                    co_return entries;
                }
                co_return std::vector<TableEntry>{};
            },
            o);
        REQUIRE(started);
        names = std::move(*started);
    }

    ~Harness() {
        // The service's coroutines see the closed sockets and leave before it goes.
        names->stop();
        for (int i = 0; i < 10 && io.poll() > 0;) ++i;
    }

    // Sends each query from its own socket at once; the replies by query (empty: none in time).
    std::vector<std::vector<uint8_t>> ask_udp(std::vector<std::vector<uint8_t>> queries,
                                              std::chrono::milliseconds wait = 1000ms) {
        std::vector<std::vector<uint8_t>> replies(queries.size());
        size_t done = 0;
        for (size_t i = 0; i < queries.size(); ++i) {
            asio::co_spawn(
                io,
                [&, i]() -> awaitable<void> {
                    udp::socket s(io, udp::endpoint(udp::v4(), 0));
                    s.send_to(asio::buffer(queries[i]),
                              udp::endpoint(asio::ip::make_address_v4("127.0.0.2"), port()));
                    std::vector<uint8_t> buf(4096);
                    asio::steady_timer t(io, wait);
                    t.async_wait([&s](boost::system::error_code e) {
                        if (!e) s.close(e);
                    });
                    boost::system::error_code ec;
                    size_t n = co_await s.async_receive(
                        asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
                    if (!ec) replies[i].assign(buf.begin(), buf.begin() + n);
                    t.cancel();
                    ++done;
                },
                asio::detached);
        }
        run_until([&] { return done == queries.size(); }, wait + 500ms);
        return replies;
    }
    std::vector<uint8_t> ask(const std::vector<uint8_t>& query,
                             std::chrono::milliseconds wait = 1000ms) {
        return ask_udp({query}, wait)[0];
    }

    void run_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (!done() && std::chrono::steady_clock::now() < deadline) io.run_one_for(10ms);
    }
    uint16_t port() const { return names->dns_port(); }
    uint64_t dropped(DnsDrop r) const { return names->stats().dropped[static_cast<size_t>(r)]; }

    Shards shards{{.count = 1, .pin = false}};
    asio::io_context& io = shards.context(0);
    TableReplicas replicas{1};
    TableWriter writer{shards, replicas,
                       Networks{*Cidr::parse("10.16.0.0/12"), *Cidr::parse("10.30.0.0/16")}};
    std::unique_ptr<NameService> names;
    int find_calls = 0;
    std::vector<std::string> asked;
    bool job_known = true;
    std::chrono::milliseconds find_delay = 100ms;
    asio::steady_timer* finding = nullptr;  // the table query by name in flight
};

}  // namespace

TEST_CASE("names in the table are answered over UDP with the job's spelling and TTL") {
    Harness h;
    REQUIRE(h.writer.upsert(web(0)));
    REQUIRE(h.writer.upsert(web(1)));
    auto rr = read_answer(h.ask(query_wire("WEB.default.app.ns.local.")));
    CHECK(rr.rcode == LDNS_RCODE_NOERROR);
    CHECK(rr.owners == std::vector<std::string>{"Web.default.App.ns.local."});
    CHECK(rr.addresses == std::vector<std::string>{"10.30.0.1"});
    CHECK(rr.ttl == 5);
    auto inst = read_answer(h.ask(query_wire("instance-1.web.default.app.ns.local.")));
    CHECK(inst.addresses == std::vector<std::string>{"10.30.1.1"});
    auto closest = read_answer(h.ask(query_wire("closest.web.default.app.ns.local.")));
    CHECK(closest.addresses == std::vector<std::string>{"10.30.0.2"});
    auto missing = read_answer(h.ask(query_wire("instance-7.web.default.app.ns.local.")));
    CHECK(missing.rcode == LDNS_RCODE_NXDOMAIN);
    auto other = read_answer(h.ask(query_wire("whatever.local.")));
    CHECK(other.rcode == LDNS_RCODE_NXDOMAIN);
    CHECK(h.find_calls == 0);
}

TEST_CASE("a question asked again is answered from the reply cache until the table changes") {
    Harness h;
    REQUIRE(h.writer.upsert(web(0)));
    auto first = h.ask(query_wire("web.default.app.ns.local.", LDNS_RR_TYPE_A, 1));
    CHECK(h.names->stats().reply_cache_hits == 0);
    // Another id, spelling and RD flag: the cached reply carries this query's.
    auto again = query_wire("WEB.Default.app.NS.local.", LDNS_RR_TYPE_A, 2);
    again[2] &= static_cast<uint8_t>(~LDNS_RD_MASK);
    auto second = h.ask(again);
    CHECK(h.names->stats().reply_cache_hits == 1);
    CHECK(read_answer(second).id == 2);
    CHECK(read_answer(second).addresses == std::vector<std::string>{"10.30.0.1"});
    CHECK((second[2] & LDNS_RD_MASK) == 0);
    auto expected = first;
    expected[1] = 2;
    expected[2] &= static_cast<uint8_t>(~LDNS_RD_MASK);
    std::copy(again.begin() + 12, again.begin() + 12 + 26, expected.begin() + 12);
    CHECK(second == expected);
    // An unknown instance is cached too, as NXDOMAIN.
    h.ask(query_wire("instance-5.web.default.app.ns.local."));
    auto missing = read_answer(h.ask(query_wire("instance-5.web.default.app.ns.local.")));
    CHECK(missing.rcode == LDNS_RCODE_NXDOMAIN);
    CHECK(h.names->stats().reply_cache_hits == 2);
    // The table moves web's RR ServiceIP: the next answer has the new one.
    REQUIRE(h.writer.replace_job("App.ns.Web.default", {web(0, "10.30.0.9")}));
    auto moved = read_answer(h.ask(query_wire("web.default.app.ns.local.", LDNS_RR_TYPE_A, 3)));
    CHECK(moved.addresses == std::vector<std::string>{"10.30.0.9"});
    CHECK(h.names->stats().reply_cache_hits == 2);
    CHECK(h.names->stats().answered == 3);
    CHECK(h.names->stats().nxdomain == 2);
}

TEST_CASE("a burst of queries queued at once is answered whole, each reply to its sender") {
    Harness h;
    REQUIRE(h.writer.upsert(web(0)));
    REQUIRE(h.writer.upsert(web(1)));
    // 100 senders at once: the server takes them in batches (32 a call); each query has its own
    // id and asks one of three names, cached after its first answer.
    const std::vector<std::pair<std::string, std::string>> names = {
        {"web.default.app.ns.local.", "10.30.0.1"},
        {"instance-1.web.default.app.ns.local.", "10.30.1.1"},
        {"closest.web.default.app.ns.local.", "10.30.0.2"}};
    std::vector<std::vector<uint8_t>> queries;
    for (uint16_t i = 0; i < 100; ++i)
        queries.push_back(query_wire(names[i % 3].first, LDNS_RR_TYPE_A, 1000 + i));
    auto replies = h.ask_udp(queries, 2000ms);
    size_t right = 0;
    for (uint16_t i = 0; i < 100; ++i) {
        auto a = read_answer(replies[i]);
        if (a.id == 1000 + i && a.addresses == std::vector<std::string>{names[i % 3].second})
            ++right;
    }
    CHECK(right == 100);
    CHECK(h.names->stats().queries_udp == 100);
    CHECK(h.names->stats().answered == 100);
    CHECK(h.names->stats().reply_cache_hits >= 97);
}

TEST_CASE("AAAA of a name is its ServiceIPs' IPv6 addresses, NOERROR without records when none") {
    Harness h;
    REQUIRE(h.writer.upsert(web6(0)));
    REQUIRE(h.writer.upsert(web6(1)));
    auto rr = read_answer(h.ask(query_wire("web.default.app.ns.local.", LDNS_RR_TYPE_AAAA)));
    CHECK(rr.rcode == LDNS_RCODE_NOERROR);
    CHECK(rr.owners == std::vector<std::string>{"Web.default.App.ns.local."});
    CHECK(rr.addresses == std::vector<std::string>{"fdff:2000::1"});
    auto inst =
        read_answer(h.ask(query_wire("instance-1.web.default.app.ns.local.", LDNS_RR_TYPE_AAAA)));
    CHECK(inst.addresses == std::vector<std::string>{"fdff::1:1"});
    // Closest has no IPv6 address: the name exists, so NOERROR and no records, never NXDOMAIN.
    auto closest =
        read_answer(h.ask(query_wire("closest.web.default.app.ns.local.", LDNS_RR_TYPE_AAAA)));
    CHECK(closest.rcode == LDNS_RCODE_NOERROR);
    CHECK(closest.addresses.empty());
    // A stays IPv4 only.
    auto a = read_answer(h.ask(query_wire("web.default.app.ns.local.", LDNS_RR_TYPE_A)));
    CHECK(a.addresses == std::vector<std::string>{"10.30.0.1"});
    auto missing =
        read_answer(h.ask(query_wire("instance-4.web.default.app.ns.local.", LDNS_RR_TYPE_AAAA)));
    CHECK(missing.rcode == LDNS_RCODE_NXDOMAIN);
}

TEST_CASE("closing the service awaits the queries still waiting, then it may go") {
    Harness h;
    h.find_delay = 1h;  // the lookup ends when the test says
    // A query for a job the table lacks waits for its lookup; a TCP client stays connected.
    bool replied = false;
    asio::co_spawn(
        h.io,
        [&]() -> awaitable<void> {
            udp::socket s(h.io, udp::endpoint(udp::v4(), 0));
            auto q = query_wire("web.default.app.ns.local.");
            s.send_to(asio::buffer(q),
                      udp::endpoint(asio::ip::make_address_v4("127.0.0.2"), h.port()));
            std::vector<uint8_t> buf(512);
            co_await s.async_receive(asio::buffer(buf), asio::use_awaitable);
            replied = true;
        },
        asio::detached);
    asio::ip::tcp::socket idle(h.io);
    idle.connect({asio::ip::make_address_v4("127.0.0.2"), h.port()});
    h.run_until([&] { return h.finding != nullptr; }, 1000ms);
    REQUIRE(h.finding != nullptr);
    bool closed = false;
    asio::co_spawn(
        h.io,
        [&]() -> awaitable<void> {
            co_await h.names->close();
            closed = true;
        },
        asio::detached);
    // Not closed while the lookup is in flight, however long it takes.
    h.run_until([&] { return closed; }, 300ms);
    CHECK_FALSE(closed);
    // Once the lookup ends, close returns: it does not wait for the TCP idle timeout (10 s), and
    // the waiting query got no answer from a stopped server.
    h.finding->cancel();
    const auto released = std::chrono::steady_clock::now();
    h.run_until([&] { return closed; }, 2000ms);
    CHECK(closed);
    CHECK(std::chrono::steady_clock::now() - released < 1000ms);
    CHECK_FALSE(replied);
}

TEST_CASE("names are answered over TCP") {
    Harness h;
    REQUIRE(h.writer.upsert(web(0)));
    auto query = query_wire("web.default.app.ns.local.");
    std::vector<uint8_t> reply;
    bool done = false;
    asio::co_spawn(
        h.io,
        [&]() -> awaitable<void> {
            asio::ip::tcp::socket s(h.io);
            co_await s.async_connect({asio::ip::make_address_v4("127.0.0.2"), h.port()},
                                     asio::use_awaitable);
            uint8_t len[2] = {0, static_cast<uint8_t>(query.size())};
            co_await asio::async_write(s, asio::buffer(len), asio::use_awaitable);
            co_await asio::async_write(s, asio::buffer(query), asio::use_awaitable);
            co_await asio::async_read(s, asio::buffer(len), asio::use_awaitable);
            reply.resize(size_t{len[0]} << 8 | len[1]);
            co_await asio::async_read(s, asio::buffer(reply), asio::use_awaitable);
            done = true;
        },
        asio::detached);
    h.run_until([&] { return done; }, 2000ms);
    REQUIRE(done);
    CHECK(read_answer(reply).addresses == std::vector<std::string>{"10.30.0.1"});
    CHECK(h.names->stats().queries_tcp == 1);
}

TEST_CASE("a name the table lacks waits for one table query by name shared by all askers") {
    Harness h;
    std::vector<std::vector<uint8_t>> queries;
    for (int i = 0; i < 5; ++i) queries.push_back(query_wire("web.default.app.ns.local.", 1, i));
    queries.push_back(query_wire("instance-1.WEB.default.app.ns.local.", 1, 9));
    auto replies = h.ask_udp(queries);
    CHECK(h.find_calls == 1);
    REQUIRE(h.asked.size() == 1);
    CHECK(h.asked[0] == "app.ns.web.default");  // the job as the first asker spelled it
    for (size_t i = 0; i < 5; ++i)
        CHECK(read_answer(replies[i]).addresses == std::vector<std::string>{"10.30.0.1"});
    CHECK(read_answer(replies[5]).addresses == std::vector<std::string>{"10.30.1.1"});
    CHECK(h.names->stats().lookup_coalesced == 5);
}

TEST_CASE("a name the cluster does not know is NXDOMAIN and remembered for a while") {
    Harness h([](NameServiceOptions& o) { o.names.negative_ttl = 300ms; });
    h.job_known = false;
    h.find_delay = 10ms;
    CHECK(read_answer(h.ask(query_wire("web.default.app.ns.local."))).rcode == LDNS_RCODE_NXDOMAIN);
    CHECK(read_answer(h.ask(query_wire("web.default.app.ns.local."))).rcode == LDNS_RCODE_NXDOMAIN);
    CHECK(h.find_calls == 1);
    CHECK(h.names->stats().negative_hits == 1);
    std::this_thread::sleep_for(350ms);
    CHECK(read_answer(h.ask(query_wire("web.default.app.ns.local."))).rcode == LDNS_RCODE_NXDOMAIN);
    CHECK(h.find_calls == 2);
}

TEST_CASE("other names are forwarded to the upstream and its answer relayed with the client's id") {
    // A fake upstream: answers every query with one A record 192.0.2.7 under its own id.
    asio::io_context uio;
    udp::socket upstream(uio, udp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0));
    const uint16_t upstream_port = upstream.local_endpoint().port();
    Harness h([&](NameServiceOptions& o) { o.dns.upstreams = {{ip("127.0.0.1"), upstream_port}}; });
    std::thread responder([&] {
        std::vector<uint8_t> buf(4096);
        udp::endpoint from;
        boost::system::error_code ec;
        size_t n = upstream.receive_from(asio::buffer(buf), from, 0, ec);
        if (ec) return;
        buf.resize(n);
        auto q = parse_query(buf);
        if (!q) return;
        DnsReply r;
        r.a = {ip("192.0.2.7")};
        upstream.send_to(asio::buffer(build_reply(*q, r)), from, 0, ec);
    });
    auto a = read_answer(h.ask(query_wire("example.org.", 1, 0x4242)));
    responder.join();
    CHECK(a.rcode == LDNS_RCODE_NOERROR);
    CHECK(a.id == 0x4242);
    CHECK(a.addresses == std::vector<std::string>{"192.0.2.7"});
    CHECK(h.names->stats().forward_answers == 1);
}

TEST_CASE("an upstream that does not answer gives SERVFAIL after the timeout, and the cap holds") {
    asio::io_context uio;
    udp::socket silent(uio, udp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0));
    Harness h([&](NameServiceOptions& o) {
        o.dns.upstreams = {{ip("127.0.0.1"), silent.local_endpoint().port()}};
        o.dns.forward_timeout = 200ms;
        o.dns.max_forwards = 2;
    });
    std::vector<std::vector<uint8_t>> queries;
    for (uint16_t i = 0; i < 3; ++i) queries.push_back(query_wire("example.org.", 1, i));
    auto replies = h.ask_udp(queries, 1500ms);
    int servfail = 0;
    for (auto& r : replies) servfail += read_answer(r).rcode == LDNS_RCODE_SERVFAIL;
    CHECK(servfail == 3);
    CHECK(h.names->stats().forward_timeouts == 2);
    CHECK(h.dropped(DnsDrop::overload) == 1);  // the third was over the cap of 2
}

TEST_CASE("queries from outside the node's namespaces are never answered") {
    Harness h([](NameServiceOptions& o) { o.dns.clients = *Cidr::parse("10.18.0.0/26"); });
    REQUIRE(h.writer.upsert(web(0)));
    CHECK(h.ask(query_wire("web.default.app.ns.local."), 300ms).empty());
    CHECK(h.ask(query_wire("example.org."), 300ms).empty());
    CHECK(h.dropped(DnsDrop::not_local) == 2);
}

TEST_CASE("a source over its rate limit is dropped and counted") {
    Harness h([](NameServiceOptions& o) { o.dns.rate_limit = 10; });  // bursts of 20
    REQUIRE(h.writer.upsert(web(0)));
    std::vector<std::vector<uint8_t>> queries(40, query_wire("web.default.app.ns.local."));
    // One source: all from one address (127.0.0.1), each from its own port.
    auto replies = h.ask_udp(queries, 500ms);
    size_t answered =
        std::count_if(replies.begin(), replies.end(), [](auto& r) { return !r.empty(); });
    CHECK(answered >= 20);
    CHECK(answered < 25);
    CHECK(h.dropped(DnsDrop::rate_limited) == 40 - answered);
}

TEST_CASE("malformed datagrams are dropped, counted by reason, and the server keeps answering") {
    Harness h;
    REQUIRE(h.writer.upsert(web(0)));
    auto response = query_wire("web.default.app.ns.local.");
    response[2] |= 0x80;
    std::vector<uint8_t> loop = {0x12, 0x34, 0x01, 0x00, 0,    1,    0,    0,    0,
                                 0,    0,    0,    0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01};
    auto replies = h.ask_udp({{0x01}, response, loop}, 300ms);
    for (auto& r : replies) CHECK(r.empty());
    CHECK(h.dropped(DnsDrop::truncated) == 1);
    CHECK(h.dropped(DnsDrop::not_query) == 1);
    CHECK(h.dropped(DnsDrop::compression) == 1);
    CHECK(read_answer(h.ask(query_wire("web.default.app.ns.local."))).addresses.size() == 1);
    MetricsText metrics;
    h.names->append_metrics(metrics);
    CHECK(metrics.text().find("netmanager_dns_dropped_total{reason=\"compression\"} 1") !=
          std::string::npos);
}
