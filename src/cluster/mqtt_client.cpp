#include "cluster/mqtt_client.hpp"

#include <mosquitto.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <cerrno>
#include <cstring>

#include "core/log.hpp"

namespace nm {

namespace {
constexpr std::string_view subsystem = "mqtt";

struct MosquittoLibrary {
    MosquittoLibrary() { mosquitto_lib_init(); }
};

std::string describe(int rc, int err) {
    if (rc == MOSQ_ERR_ERRNO) return std::strerror(err);
    return mosquitto_strerror(rc);
}
}  // namespace

MqttClient::MqttClient(asio::any_io_executor executor, MqttOptions options)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      writer_wake_(executor_),
      connection_changed_(executor_),
      backoff_timer_(executor_),
      misc_timer_(executor_) {
    static MosquittoLibrary library;  // once per process, thread-safe
}

MqttClient::~MqttClient() {
    if (session_socket_) session_socket_->release();
    if (mosq_) mosquitto_destroy(mosq_);
}

Result<void> MqttClient::start() {
    if (started_) return {};
    if (options_.client_id.empty())
        return fail(Errc::invalid_argument, "MQTT client id (the node id) must not be empty");
    if (options_.keepalive.count() != 0 && options_.keepalive.count() < 5)
        return fail(Errc::invalid_argument, "MQTT keepalive must be 0 or at least 5 s, got " +
                                                std::to_string(options_.keepalive.count()));
    mosq_ = mosquitto_new(options_.client_id.c_str(), true, this);
    if (!mosq_) return fail_errno("cannot create MQTT client", errno);
    // Without it Nagle holds a small packet (a subscription, a table query) behind the
    // previous one's delayed ACK: 40 ms on every control-plane round trip.
    mosquitto_int_option(mosq_, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_callback_set(mosq_, [](mosquitto*, void* self, int rc) {
        static_cast<MqttClient*>(self)->handle_connack(rc);
    });
    mosquitto_disconnect_callback_set(mosq_, [](mosquitto*, void* self, int rc) {
        static_cast<MqttClient*>(self)->handle_disconnect(rc);
    });
    mosquitto_message_callback_set(mosq_, [](mosquitto*, void* self, const mosquitto_message* m) {
        static_cast<MqttClient*>(self)->handle_message(m);
    });
    if (options_.tls_cert.empty() != options_.tls_key.empty())
        return fail(
            Errc::invalid_argument,
            "MQTT TLS needs both a certificate (MqttCert) and its key (MqttKey); only the " +
                std::string(options_.tls_cert.empty() ? "key" : "certificate") + " is set");
    if (!options_.tls_cert.empty()) {
        const char* ca = options_.tls_ca.empty() ? nullptr : options_.tls_ca.c_str();
        const char* ca_dir = ca ? nullptr : "/etc/ssl/certs";
        int rc = mosquitto_tls_set(mosq_, ca, ca_dir, options_.tls_cert.c_str(),
                                   options_.tls_key.c_str(), nullptr);
        if (rc != MOSQ_ERR_SUCCESS)
            return fail(Errc::invalid_argument, "MQTT TLS setup with cert " + options_.tls_cert +
                                                    " and key " + options_.tls_key + ": " +
                                                    describe(rc, errno));
        NM_LOG(info, subsystem) << "MQTT over TLS: certificate " << options_.tls_cert << ", CA "
                                << (ca ? options_.tls_ca : std::string(ca_dir));
    }
    started_ = true;
    asio::co_spawn(executor_, run(gate_.hold()), [](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& err) {
            NM_LOG(error, subsystem) << "MQTT loop failed: " << err.what();
        }
    });
    return {};
}

void MqttClient::stop() {
    if (!started_ || stopping_) return;
    stopping_ = true;
    if (connected_) mosquitto_disconnect(mosq_);
    connected_ = false;
    if (session_socket_) {
        boost::system::error_code ignored;
        session_socket_->cancel(ignored);
    }
    writer_wake_.notify();
    connection_changed_.notify_all();
    backoff_timer_.cancel();
    misc_timer_.cancel();
}

awaitable<void> MqttClient::close() {
    stop();
    co_await gate_.close();
}

awaitable<void> MqttClient::run(Gate::Holder /*held while it runs*/) {
    auto backoff = options_.backoff_min;
    bool first = true;
    while (!stopping_) {
        uint64_t connects_before = connect_count_;
        errno = 0;
        int rc = first ? mosquitto_connect_async(mosq_, options_.host.c_str(), options_.port,
                                                 static_cast<int>(options_.keepalive.count()))
                       : mosquitto_reconnect_async(mosq_);
        int err = errno;
        first = false;
        if (rc == MOSQ_ERR_SUCCESS) {
            co_await drive_session();
        } else {
            NM_LOG(warn, subsystem) << "cannot connect to MQTT broker " << options_.host << ":"
                                    << options_.port << ": " << describe(rc, err);
        }
        if (stopping_) break;
        // A session that got as far as CONNACK starts the backoff over.
        if (connect_count_ != connects_before) backoff = options_.backoff_min;
        NM_LOG(info, subsystem) << "reconnecting to " << options_.host << ":" << options_.port
                                << " in " << backoff.count() << " ms";
        backoff_timer_.expires_after(backoff);
        co_await backoff_timer_.async_wait();
        backoff = std::min(backoff * 2, options_.backoff_max);
    }
}

awaitable<void> MqttClient::drive_session() {
    using namespace asio::experimental::awaitable_operators;
    int fd = mosquitto_socket(mosq_);
    if (fd < 0) co_return;
    // libmosquitto owns the fd: the descriptor only awaits readiness and is released, never closed.
    asio::posix::stream_descriptor socket(executor_, fd);
    session_socket_ = &socket;
    session_fd_ = fd;
    try {
        co_await (read_loop(socket, fd) || write_loop(socket, fd) || misc_loop(fd));
    } catch (const std::exception& e) {
        NM_LOG(error, subsystem) << "MQTT session loop: " << e.what();
    }
    session_socket_ = nullptr;
    session_fd_ = -1;
    socket.release();
    connected_ = false;
    connection_changed_.notify_all();
    // A socket libmosquitto still holds (the loops ended for another reason) is closed here.
    if (mosquitto_socket(mosq_) >= 0) mosquitto_disconnect(mosq_);
}

awaitable<void> MqttClient::read_loop(asio::posix::stream_descriptor& socket, int fd) {
    for (;;) {
        auto [ec] =
            co_await socket.async_wait(asio::posix::stream_descriptor::wait_read, use_tuple);
        if (stopping_ || ec) co_return;
        errno = 0;
        int rc = mosquitto_loop_read(mosq_, 1);
        int err = errno;
        if (rc != MOSQ_ERR_SUCCESS) {
            NM_LOG(warn, subsystem) << "broker connection lost (read): " << describe(rc, err);
            co_return;
        }
        if (mosquitto_socket(mosq_) != fd) co_return;
        // Handlers may have queued output (subscriptions, publishes) while libmosquitto was in a
        // callback: write it now, before anything resumed by those handlers runs, so what they
        // asked for reaches the broker first. What does not fit is left to the writer.
        if (mosquitto_want_write(mosq_)) {
            rc = mosquitto_loop_write(mosq_, 1);

            err = errno;
            if (rc != MOSQ_ERR_SUCCESS) {
                NM_LOG(warn, subsystem) << "broker connection lost (write): " << describe(rc, err);
                co_return;
            }
            if (mosquitto_socket(mosq_) != fd) co_return;
        }
        wake_writer();
    }
}

awaitable<void> MqttClient::write_loop(asio::posix::stream_descriptor& socket, int fd) {
    for (;;) {
        if (mosquitto_want_write(mosq_)) {
            auto [ec] =
                co_await socket.async_wait(asio::posix::stream_descriptor::wait_write, use_tuple);
            if (stopping_ || ec) co_return;
            errno = 0;
            int rc = mosquitto_loop_write(mosq_, 1);
            int err = errno;
            if (rc != MOSQ_ERR_SUCCESS) {
                NM_LOG(warn, subsystem) << "broker connection lost (write) to " << options_.host
                                        << ":" << options_.port << ": " << describe(rc, err);
                co_return;
            }
            if (mosquitto_socket(mosq_) != fd) co_return;
        } else {
            co_await writer_wake_.wait();
            if (stopping_ || mosquitto_socket(mosq_) != fd) co_return;
        }
    }
}

awaitable<void> MqttClient::misc_loop(int fd) {
    // Keepalive pings are due every keepalive seconds; a finer tick keeps them on time.
    auto tick =
        std::chrono::milliseconds(std::max<int64_t>(100, options_.keepalive.count() * 1000 / 4));
    tick = std::min(tick, std::chrono::milliseconds(1000));
    for (;;) {
        misc_timer_.expires_after(tick);
        co_await misc_timer_.async_wait();
        if (stopping_) co_return;
        int rc = mosquitto_loop_misc(mosq_);
        if (rc != MOSQ_ERR_SUCCESS || mosquitto_socket(mosq_) != fd) {
            NM_LOG(warn, subsystem)
                << "broker connection lost (keepalive): " << describe(rc, errno);
            co_return;
        }
        wake_writer();
    }
}

void MqttClient::wake_writer() {
    writer_wake_.notify();
}

void MqttClient::check_session() {
    if (session_socket_ && mosquitto_socket(mosq_) != session_fd_) {
        boost::system::error_code ignored;
        session_socket_->cancel(ignored);
        writer_wake_.notify();
        misc_timer_.cancel();
    }
}

void MqttClient::handle_connack(int rc) {
    if (rc != 0) {
        NM_LOG(warn, subsystem) << "broker " << options_.host << ":" << options_.port
                                << " refused the connection: " << mosquitto_connack_string(rc);
        return;
    }
    connected_ = true;
    ++connect_count_;
    NM_LOG(info, subsystem) << "connected to " << options_.host << ":" << options_.port << " as "
                            << options_.client_id << "; subscribing " << topics_.size()
                            << " topics";
    // Clean session: the broker forgot our subscriptions, so every topic is subscribed again.
    for (const auto& [topic, qos] : topics_)
        mosquitto_subscribe(mosq_, nullptr, topic.c_str(), qos);
    flush_offline();
    wake_writer();
    connection_changed_.notify_all();
    if (auto hold = gate_.try_hold(); hold && on_connected_)
        asio::post(executor_, [this, hold = std::move(*hold)] {
            if (connected_ && on_connected_) on_connected_();
        });
}

void MqttClient::handle_disconnect(int rc) {
    if (connected_ && !stopping_)
        NM_LOG(warn, subsystem) << "disconnected from " << options_.host << ":" << options_.port
                                << ": "
                                << (rc == 0 ? std::string("on request") : describe(rc, errno));
    connected_ = false;
    connection_changed_.notify_all();
}

void MqttClient::handle_message(const mosquitto_message* message) {
    if (!message || !message->topic || !on_message_) return;
    std::string_view payload(static_cast<const char*>(message->payload),
                             message->payload ? static_cast<size_t>(message->payloadlen) : 0);
    try {
        on_message_(message->topic, payload);
    } catch (const std::exception& e) {
        // A bad message must never take the link down.
        NM_LOG(error, subsystem) << "handler for " << message->topic << " threw: " << e.what();
    }
}

void MqttClient::subscribe(const std::string& topic, int qos) {
    auto [it, inserted] = topics_.insert_or_assign(topic, qos);
    (void)it;
    (void)inserted;
    if (connected_) {
        mosquitto_subscribe(mosq_, nullptr, topic.c_str(), qos);

        wake_writer();
        check_session();
    }
}

void MqttClient::unsubscribe(const std::string& topic) {
    if (topics_.erase(topic) == 0) return;
    if (connected_) {
        mosquitto_unsubscribe(mosq_, nullptr, topic.c_str());
        wake_writer();
        check_session();
    }
}

Result<void> MqttClient::publish(const std::string& topic, std::string payload, int qos) {
    if (!connected_) {
        if (offline_.size() >= options_.offline_queue_limit)
            return fail(Errc::exhausted, "MQTT offline queue full (" +
                                             std::to_string(offline_.size()) +
                                             " messages) while the broker " + options_.host + ":" +
                                             std::to_string(options_.port) + " is unreachable");
        offline_.push_back(Pending{topic, std::move(payload), qos});
        return {};
    }
    errno = 0;
    int rc = mosquitto_publish(mosq_, nullptr, topic.c_str(), static_cast<int>(payload.size()),
                               payload.data(), qos, false);
    int err = errno;
    wake_writer();
    check_session();
    if (rc != MOSQ_ERR_SUCCESS)
        return fail(Errc::unavailable, "MQTT publish to " + topic + ": " + describe(rc, err));
    return {};
}

void MqttClient::flush_offline() {
    while (!offline_.empty() && connected_) {
        Pending& p = offline_.front();
        mosquitto_publish(mosq_, nullptr, p.topic.c_str(), static_cast<int>(p.payload.size()),
                          p.payload.data(), p.qos, false);
        offline_.pop_front();
    }
}

awaitable<Result<void>> MqttClient::wait_connected(std::chrono::milliseconds timeout) {
    using namespace asio::experimental::awaitable_operators;
    auto hold = gate_.try_hold();
    SteadyTimer deadline(executor_, timeout);
    bool expired = false;
    while (hold && !connected_ && !stopping_ && !expired) {
        auto woke = co_await (connection_changed_.wait() || deadline.async_wait());
        expired = woke.index() == 1;
    }
    if (connected_) co_return Result<void>{};
    co_return fail(Errc::timeout, "no connection to MQTT broker " + options_.host + ":" +
                                      std::to_string(options_.port) + " within " +
                                      std::to_string(timeout.count()) + " ms");
}

}  // namespace nm
