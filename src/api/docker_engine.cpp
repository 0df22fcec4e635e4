#include "api/docker_engine.hpp"

#include <boost/json/parse.hpp>

#include "api/unix_http_client.hpp"

namespace nm {

DockerEngine::DockerEngine(std::string socket_path, std::chrono::milliseconds timeout)
    : socket_path_(std::move(socket_path)), timeout_(timeout) {}

awaitable<Result<pid_t>> DockerEngine::container_pid(std::string id) {
    std::string engine = "container engine at " + socket_path_;
    auto answer = co_await unix_http_get(socket_path_, "/containers/" + id + "/json", timeout_);
    if (!answer)
        co_return fail(Errc::unavailable, "/docker/deploy needs a container engine, but " +
                                              answer.error().message +
                                              " (use /container/deploy with a pid instead)");
    auto& response = *answer;
    if (response.result() == boost::beast::http::status::not_found)
        co_return fail(Errc::not_found, "the container engine knows no container '" + id + "'");
    if (response.result() != boost::beast::http::status::ok)
        co_return fail(Errc::unavailable, engine + " answered " +
                                              std::to_string(response.result_int()) +
                                              " for container '" + id + "'");

    boost::system::error_code ec;
    auto value = boost::json::parse(response.body(), ec);
    const boost::json::object* state = nullptr;
    if (!ec && value.is_object())
        if (auto* s = value.as_object().if_contains("State"); s && s->is_object())
            state = &s->as_object();
    if (!state)
        co_return fail(Errc::unavailable,
                       engine + ": container inspect answer without a State object");
    auto* running = state->if_contains("Running");
    if (running && running->is_bool() && !running->as_bool())
        co_return fail(Errc::conflict, "container '" + id + "' is not running");
    auto* pid = state->if_contains("Pid");
    if (!pid || !pid->is_int64() || pid->as_int64() <= 0)
        co_return fail(Errc::conflict,
                       "container '" + id + "' has no running process (State.Pid missing or 0)");
    co_return static_cast<pid_t>(pid->as_int64());
}

}  // namespace nm
