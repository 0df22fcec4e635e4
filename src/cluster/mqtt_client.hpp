#pragma once
// An MQTT client (libmosquitto) driven by an Asio executor: the broker socket is awaited on the
// executor (read and write readiness), keepalive runs on a timer, no thread of its own.
// Everything here is called on that executor's thread (shard 0) only.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/gate.hpp"
#include "core/shard.hpp"
#include "core/wakeup.hpp"

struct mosquitto;
struct mosquitto_message;

namespace nm {

struct MqttOptions {
    std::string host = "127.0.0.1";
    uint16_t port = 10003;
    std::string client_id;
    std::chrono::seconds keepalive{30};
    // Reconnect delay: doubles from min to max after each failed attempt.
    std::chrono::milliseconds backoff_min{200};
    std::chrono::milliseconds backoff_max{10000};
    // TLS to the broker when both are set (reference MqttCert/MqttKey; one alone is an error);
    // ca: the CA file that signed the broker's certificate (MqttCa), empty for /etc/ssl/certs.
    std::string tls_cert, tls_key, tls_ca;
    size_t offline_queue_limit = 10000;  // publishes kept while disconnected
};

class MqttClient {
  public:
    using MessageHandler = std::function<void(const std::string& topic, std::string_view payload)>;

    MqttClient(asio::any_io_executor executor, MqttOptions options);
    ~MqttClient();
    MqttClient(const MqttClient&) = delete;
    MqttClient& operator=(const MqttClient&) = delete;

    // Begins connecting; keeps reconnecting with backoff until stop(). Fails only when
    // libmosquitto rejects the options (bad TLS files, empty client id).
    Result<void> start();
    // Disconnects and ends the driving coroutine; safe more than once.
    void stop();
    // stop(), then resumes once every coroutine of the client has left it: then it may be
    // destroyed.
    awaitable<void> close();

    void on_message(MessageHandler handler) { on_message_ = std::move(handler); }
    // Called after every successful (re)connect, once the remembered topics are resubscribed.
    void on_connected(std::function<void()> handler) { on_connected_ = std::move(handler); }

    // Remembered and sent again after every reconnect.
    void subscribe(const std::string& topic, int qos = 1);
    void unsubscribe(const std::string& topic);
    bool subscribed(const std::string& topic) const { return topics_.contains(topic); }

    // While disconnected, the message waits (bounded queue) and goes out after the next connect.
    Result<void> publish(const std::string& topic, std::string payload, int qos = 1);

    bool connected() const { return connected_; }
    bool stopping() const { return stopping_; }
    uint64_t connect_count() const { return connect_count_; }
    const MqttOptions& options() const { return options_; }
    asio::any_io_executor executor() const { return executor_; }
    // Resolves once connected (success) or after timeout (Errc::timeout).
    awaitable<Result<void>> wait_connected(std::chrono::milliseconds timeout);
    // Resumes at the next connect, disconnect or stop (true), or when cancelled (false, as the
    // losing side of `change() || timer`); check connected()/stopping() after.
    awaitable<bool> connection_change() { return connection_changed_.wait(); }

  private:
    struct Pending {
        std::string topic, payload;
        int qos;
    };
    awaitable<void> run(Gate::Holder hold);
    awaitable<void> drive_session();
    awaitable<void> read_loop(asio::posix::stream_descriptor& socket, int fd);
    awaitable<void> write_loop(asio::posix::stream_descriptor& socket, int fd);
    awaitable<void> misc_loop(int fd);
    // Wakes the session's waits when libmosquitto closed the socket outside of them.
    void check_session();
    void handle_connack(int rc);
    void handle_disconnect(int rc);
    void handle_message(const mosquitto_message* message);
    void flush_offline();
    void wake_writer();

    asio::any_io_executor executor_;
    MqttOptions options_;
    mosquitto* mosq_ = nullptr;
    MessageHandler on_message_;
    std::function<void()> on_connected_;
    std::map<std::string, int> topics_;
    std::deque<Pending> offline_;
    bool started_ = false;
    bool stopping_ = false;
    bool connected_ = false;
    asio::posix::stream_descriptor* session_socket_ = nullptr;
    int session_fd_ = -1;
    uint64_t connect_count_ = 0;
    Wakeup writer_wake_;            // output queued (a publish, a subscription) or stop
    Broadcast connection_changed_;  // connected, disconnected or stopping: waiters look again
    SteadyTimer backoff_timer_;
    SteadyTimer misc_timer_;
    Gate gate_;  // held by every coroutine of the client
};

}  // namespace nm
