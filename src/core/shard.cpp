#include "core/shard.hpp"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstring>

#include "core/log.hpp"

namespace nm {
namespace {
thread_local int this_shard = -1;
thread_local Shards* this_group = nullptr;

void force_exit(int) {
    static const char text[] = "second signal; exiting now\n";
    (void)!write(2, text, sizeof text - 1);
    _exit(130);
}
}  // namespace

int current_shard() {
    return this_shard;
}
Shards* Shards::current() {
    return this_group;
}

Shards::Shards(ShardOptions options) : pin_(options.pin), cpus_(std::move(options.cpus)) {
    unsigned count = options.count;
    if (count == 0) count = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < count; ++i) shards_.push_back(std::make_unique<Shard>());
}

Shards::~Shards() {
    stop(std::chrono::milliseconds(1000));
    join();
}

void Shards::start() {
    unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < count(); ++i) {
        Shard& shard = *shards_[i];
        shard.thread = std::thread([this, i, cores, &shard] {
            this_shard = static_cast<int>(i);
            this_group = this;
            if (pin_) {
                cpu_set_t set;
                CPU_ZERO(&set);
                const unsigned cpu = cpus_.empty() ? i % cores : cpus_[i % cpus_.size()];
                CPU_SET(cpu, &set);
                if (int e = pthread_setaffinity_np(pthread_self(), sizeof set, &set); e != 0)
                    NM_LOG(warn, "shard") << "shard " << i << " cannot be pinned to core " << cpu
                                          << ": " << std::strerror(e) << "; it runs unpinned";
            }
            for (;;) {
                try {
                    shard.context.run();
                    break;
                } catch (const std::exception& e) {
                    NM_LOG(error, "shard") << "handler threw: " << e.what();
                }
            }
            {
                std::lock_guard lock(mutex_);
                shard.exited = true;
            }
            changed_.notify_all();
        });
    }
}

void Shards::at_stop(unsigned i, std::function<void()> fn) {
    std::lock_guard lock(mutex_);
    shards_.at(i)->stop_callbacks.push_back(std::move(fn));
}

void Shards::at_close(unsigned i, std::string what, std::function<awaitable<void>()> close) {
    std::lock_guard lock(mutex_);
    shards_.at(i)->closers.push_back({std::move(what), std::move(close)});
}

std::vector<std::string> Shards::closing(unsigned i) {
    std::lock_guard lock(mutex_);
    return shards_.at(i)->closing;
}

void Shards::stop(std::chrono::milliseconds grace) {
    if (stopping_.exchange(true)) return;
    {
        std::lock_guard lock(mutex_);
        grace_ = grace;
        stop_deadline_ = std::chrono::steady_clock::now() + grace;
    }
    changed_.notify_all();
    for (unsigned i = 0; i < count(); ++i) asio::post(context(i), [this, i] { stop_shard(i); });
}

void Shards::stop_shard(unsigned i) {
    Shard& s = *shards_[i];
    std::vector<std::function<void()>> callbacks;
    std::vector<Closer> closers;
    {
        std::lock_guard lock(mutex_);
        callbacks.swap(s.stop_callbacks);
        closers.swap(s.closers);
        for (const Closer& c : closers) s.closing.push_back(c.what);
    }
    for (auto& fn : callbacks) fn();
    if (closers.empty()) {
        s.work.reset();
        return;
    }
    for (Closer& c : closers) {
        std::string what = "closing " + c.what;
        spawn(i, run_closer(i, std::move(c)), std::move(what));
    }
}

awaitable<void> Shards::run_closer(unsigned i, Closer closer) {
    co_await closer.close();
    // Not reached when close() throws (spawn logs it) or never finishes: then the shard stays
    // busy and join() names the closer.
    Shard& s = *shards_[i];
    bool last = false;
    {
        std::lock_guard lock(mutex_);
        if (auto it = std::find(s.closing.begin(), s.closing.end(), closer.what);
            it != s.closing.end())
            s.closing.erase(it);
        last = s.closing.empty();
    }
    if (last) s.work.reset();
}

void Shards::join() {
    std::unique_lock lock(mutex_);
    auto all_exited = [this] {
        return std::all_of(shards_.begin(), shards_.end(),
                           [](const auto& s) { return s->exited || !s->thread.joinable(); });
    };
    changed_.wait(lock, [&] { return stop_deadline_.has_value() || all_exited(); });
    if (stop_deadline_ && !changed_.wait_until(lock, *stop_deadline_, all_exited)) {
        for (unsigned i = 0; i < count(); ++i) {
            Shard& s = *shards_[i];
            if (s.exited || !s.thread.joinable()) continue;
            std::string what;
            for (const auto& c : s.closing) what += (what.empty() ? "" : ", ") + c;
            NM_LOG(warn, "shard") << "shard " << i << " still busy " << grace_.count()
                                  << " ms after stop began ("
                                  << (what.empty() ? std::string("its closers finished, other "
                                                                 "work is pending")
                                                   : "still closing: " + what)
                                  << "); stopping it hard";
            s.context.stop();
        }
    }
    lock.unlock();
    for (auto& shard : shards_)
        if (shard->thread.joinable()) shard->thread.join();
}

void Shards::spawn(unsigned i, awaitable<void> task, std::string what) {
    asio::co_spawn(context(i), std::move(task), [what = std::move(what)](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const boost::system::system_error& err) {
            if (err.code() != asio::error::operation_aborted)
                NM_LOG(error, "shard") << what << " failed: " << err.what();
        } catch (const std::exception& err) {
            NM_LOG(error, "shard") << what << " failed: " << err.what();
        }
    });
}

void Shards::stop_on_signals() {
    auto signals = std::make_shared<asio::signal_set>(context(0), SIGINT, SIGTERM);
    auto wait = std::make_shared<std::function<void()>>();
    *wait = [this, signals, wait] {
        signals->async_wait([this, signals, wait](boost::system::error_code ec, int number) {
            if (ec) return;
            if (signals_seen_.fetch_add(1) > 0) {
                NM_LOG(warn, "main") << "second signal; exiting now";
                std::_Exit(130);
            }
            NM_LOG(info, "main") << "signal " << number << " received; stopping";
            stop();
            (*wait)();
        });
    };
    (*wait)();
    // A pending wait would keep shard 0 alive: once stopping, a plain handler takes over
    // the second signal.
    at_stop(0, [signals, wait] {
        asio::post(signals->get_executor(), [signals, wait] {
            boost::system::error_code ignored;
            signals->clear(ignored);
            signals->cancel(ignored);
            *wait = nullptr;
            std::signal(SIGINT, force_exit);
            std::signal(SIGTERM, force_exit);
        });
    });
}

}  // namespace nm
