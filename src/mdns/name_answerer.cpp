#include "mdns/name_answerer.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace nm {

struct NameAnswerer::Lookup {
    std::vector<std::shared_ptr<asio::steady_timer>> waiters;
    bool ok = false;
};

NameAnswerer::NameAnswerer(const NamesIndex& index, FindJob find_job, NameOptions options,
                           DnsStats& stats)
    : index_(index), find_job_(std::move(find_job)), options_(options), stats_(stats) {}

NameAnswerer::~NameAnswerer() {
    stop();
}

awaitable<void> NameAnswerer::close() {
    stop();
    co_await gate_.close();
}

void NameAnswerer::stop() {
    stopped_ = true;
    for (auto& [job, lookup] : in_flight_)
        for (auto& w : lookup->waiters) w->cancel();
}

std::vector<uint8_t> NameAnswerer::rcode_reply(const DnsQuery& query, uint8_t rcode) {
    if (rcode == dns_nxdomain) ++stats_.nxdomain;
    DnsReply reply;
    reply.rcode = rcode;
    return build_reply(query, reply);
}

std::vector<uint8_t> NameAnswerer::decided(const DnsQuery& query, std::vector<uint8_t> reply,
                                           ReplyCache::Outcome outcome) {
    cache_.insert(query, reply, outcome);
    return reply;
}

bool NameAnswerer::answer_cached(const PlainQuestion& question, std::vector<uint8_t>& reply) {
    auto outcome = cache_.find(question, reply);
    if (!outcome) return false;
    ++stats_.reply_cache_hits;
    if (*outcome == ReplyCache::Outcome::answered)
        ++stats_.answered;
    else
        ++stats_.nxdomain;
    return true;
}

std::optional<std::vector<uint8_t>> NameAnswerer::from_index(const DnsQuery& query,
                                                             const NameQuery& name) {
    const JobNames* job = index_.find(name.job);
    if (!job) return std::nullopt;
    if (!name_exists(*job, name))
        return decided(query, rcode_reply(query, dns_nxdomain), ReplyCache::Outcome::nxdomain);
    DnsReply reply;
    reply.owner = answer_name(*job, name);
    reply.a = addresses(*job, name);
    reply.aaaa = addresses_v6(*job, name);
    reply.ttl = options_.ttl;
    ++stats_.answered;
    return decided(query, build_reply(query, reply), ReplyCache::Outcome::answered);
}

std::optional<std::vector<uint8_t>> NameAnswerer::answer_now(const DnsQuery& query) {
    auto name = parse_name(query.name);
    if (!name)
        return decided(query, rcode_reply(query, dns_nxdomain), ReplyCache::Outcome::nxdomain);
    if (auto reply = from_index(query, *name)) return reply;
    auto it = negative_.find(to_lower(name->job));
    if (it != negative_.end()) {
        if (Clock::now() < it->second) {
            ++stats_.negative_hits;
            return rcode_reply(query, dns_nxdomain);
        }
        negative_.erase(it);
    }
    return std::nullopt;
}

awaitable<std::vector<uint8_t>> NameAnswerer::answer(DnsQuery query) {
    if (auto now = answer_now(query)) co_return std::move(*now);
    if (waiting_ >= options_.max_waiting || stopped_) {
        stats_.drop(DnsDrop::overload);
        co_return std::vector<uint8_t>{};
    }
    auto hold = gate_.try_hold();
    if (!hold) co_return std::vector<uint8_t>{};
    ++waiting_;
    const NameQuery name = *parse_name(query.name);  // answer_now read it
    const bool ok = co_await lookup(name.job);
    --waiting_;
    if (!ok) {
        ++stats_.lookup_failures;
        co_return rcode_reply(query, dns_servfail);
    }
    if (auto reply = from_index(query, name)) co_return std::move(*reply);
    co_return rcode_reply(query, dns_nxdomain);  // the cluster does not know the job
}

awaitable<bool> NameAnswerer::lookup(const std::string& job) {
    const std::string key = to_lower(job);
    if (auto it = in_flight_.find(key); it != in_flight_.end()) {
        ++stats_.lookup_coalesced;
        auto lookup = it->second;
        auto timer = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor);
        timer->expires_after(options_.lookup_timeout);
        lookup->waiters.push_back(timer);
        boost::system::error_code ec;
        co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
        co_return lookup->ok && !stopped_;
    }
    auto lookup = std::make_shared<Lookup>();
    in_flight_.emplace(key, lookup);
    ++stats_.lookups;
    auto found = co_await find_job_(job);
    lookup->ok = found.has_value() && !stopped_;
    if (lookup->ok && !index_.find(job)) {
        if (negative_.size() > 4096)
            std::erase_if(negative_, [now = Clock::now()](auto& n) { return n.second <= now; });
        negative_[key] = Clock::now() + options_.negative_ttl;
    }
    in_flight_.erase(key);
    for (auto& w : lookup->waiters) w->cancel();
    co_return lookup->ok;
}

}  // namespace nm
