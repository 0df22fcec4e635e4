// Which failed calls the data-path and accept loops try again, and after what pause.
#include "core/retry.hpp"

#include <catch2/catch.hpp>
#include <cerrno>

using namespace nm;
using namespace std::chrono_literals;

TEST_CASE("interruptions and peers that gave up are retried at once") {
    for (int e : {EINTR, EAGAIN, ECONNABORTED, ECONNREFUSED, EPROTO}) {
        INFO("errno " << e);
        REQUIRE(retry_after(e));
        CHECK(*retry_after(e) == 0ms);
    }
}

TEST_CASE("running short of buffers or descriptors is retried after a pause") {
    CHECK(retry_after(ENOBUFS) == 10ms);
    CHECK(retry_after(ENOMEM) == 10ms);
    CHECK(retry_after(EMFILE) == 100ms);
    CHECK(retry_after(ENFILE) == 100ms);
}

TEST_CASE("failures that will not pass are permanent") {
    for (int e : {EBADF, EBADFD, EINVAL, EFAULT, ENOTSOCK, EIO, ENODEV}) {
        INFO("errno " << e);
        CHECK_FALSE(retry_after(e));
    }
}
