#include "api/api_token.hpp"

#include <catch2/catch.hpp>
#include <fstream>

#include "child_process.hpp"

using namespace nm;

TEST_CASE("a bearer header matches only the exact token, the scheme in any case") {
    CHECK(bearer_matches("Bearer s3cret", "s3cret"));
    CHECK(bearer_matches("bearer s3cret", "s3cret"));
    CHECK(bearer_matches("BEARER   s3cret ", "s3cret"));
    CHECK_FALSE(bearer_matches("Bearer s3cre", "s3cret"));
    CHECK_FALSE(bearer_matches("Bearer s3cretx", "s3cret"));
    CHECK_FALSE(bearer_matches("Bearer S3cret", "s3cret"));
    CHECK_FALSE(bearer_matches("Basic s3cret", "s3cret"));
    CHECK_FALSE(bearer_matches("Bearers3cret", "s3cret"));
    CHECK_FALSE(bearer_matches("", "s3cret"));
    CHECK_FALSE(bearer_matches("Bearer ", "s3cret"));
}

TEST_CASE("the API token is the token file's first line, and a missing or empty file is an error") {
    testkit::TempDir dir("api-token");
    auto path = (dir.path() / "token").string();
    std::ofstream(path) << "  abc123\t\r\nsecond line\n";
    auto token = read_api_token(path);
    REQUIRE(token);
    CHECK(*token == "abc123");

    std::ofstream(path, std::ios::trunc) << "\n";
    auto empty = read_api_token(path);
    REQUIRE_FALSE(empty);
    CHECK(empty.error().message.find("has no token") != std::string::npos);

    auto missing = read_api_token((dir.path() / "absent").string());
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message.find("absent") != std::string::npos);
}
