// The names of docs/names.md: which names exist, and how the index follows the table.
#include "mdns/names_index.hpp"

#include <catch2/catch.hpp>

#include "mdns_testkit.hpp"

using namespace nm;
using namespace nm::testkit;

TEST_CASE("a job's RR, closest and instance names read back to the job in any case") {
    auto rr = parse_name("web.default.app.ns.local");
    REQUIRE(rr);
    CHECK(rr->kind == NameQuery::Kind::rr);
    CHECK(rr->job == "app.ns.web.default");
    auto closest = parse_name("CLOSEST.Web.Default.App.NS.local.");
    REQUIRE(closest);
    CHECK(closest->kind == NameQuery::Kind::closest);
    CHECK(closest->job == "App.NS.Web.Default");
    auto inst = parse_name("instance-12.web.default.app.ns.LOCAL");
    REQUIRE(inst);
    CHECK(inst->kind == NameQuery::Kind::instance);
    CHECK(inst->instance == 12);
}

TEST_CASE("names that are not a job's are not ours") {
    CHECK_FALSE(parse_name("web.default.app.ns.com"));
    CHECK_FALSE(parse_name("default.app.ns.local"));        // three parts
    CHECK_FALSE(parse_name("x.web.default.app.ns.local"));  // unknown prefix
    CHECK_FALSE(parse_name("instance-.web.default.app.ns.local"));
    CHECK_FALSE(parse_name("instance-1x.web.default.app.ns.local"));
    CHECK_FALSE(parse_name("a.b.c.d.e.web.default.app.ns.local"));
    CHECK_FALSE(parse_name("w_b.default.app.ns.local"));  // '_' is in no job name
    CHECK(is_local_name("x.local"));
    CHECK_FALSE(is_local_name("local"));
    CHECK_FALSE(is_local_name("example.com"));
}

TEST_CASE("the index follows the table: upserts, replaced jobs, removals and evicted nsips") {
    TranslationTable table;
    NamesIndex index;
    auto change = [](TableChange::Kind kind) {
        TableChange c;
        c.kind = kind;
        return c;
    };
    auto upsert = [&](TableEntry e) {
        TableChange c = change(TableChange::Kind::upsert);
        c.entries = {std::move(e)};
        return c;
    };
    auto apply = [&](TableChange c) {
        c.version = table.version() + 1;
        REQUIRE(table.apply(c));
        index.apply(c, table);
    };
    apply(upsert(web(0)));
    apply(upsert(web(1)));
    const JobNames* job = index.find("APP.NS.WEB.DEFAULT");
    REQUIRE(job);
    CHECK(job->job == "App.ns.Web.default");
    CHECK(job->rr == std::vector<Ipv4>{ip("10.30.0.1")});
    CHECK(job->closest == std::vector<Ipv4>{ip("10.30.0.2")});
    REQUIRE(job->instances.size() == 2);
    CHECK(job->instances[1] == std::pair<int, Ipv4>{1, ip("10.30.1.1")});
    auto name = *parse_name("instance-1.web.default.app.ns.local");
    CHECK(answer_name(*job, name) == "instance-1.Web.default.App.ns.local");
    CHECK(addresses(*job, name) == std::vector<Ipv4>{ip("10.30.1.1")});
    CHECK(addresses_v6(*job, name).empty());  // no Address_v6 in the table
    apply(upsert(web6(1)));
    job = index.find("app.ns.web.default");
    REQUIRE(job);
    CHECK(addresses_v6(*job, name) == std::vector<Ipv6>{*Ipv6::parse("fdff::1:1")});
    CHECK(addresses_v6(*job, *parse_name("web.default.app.ns.local")) ==
          std::vector<Ipv6>{*Ipv6::parse("fdff:2000::1")});
    CHECK(addresses_v6(*job, *parse_name("closest.web.default.app.ns.local")).empty());

    TableChange remove_one = change(TableChange::Kind::remove_instance);
    remove_one.job = "App.ns.Web.default";
    remove_one.instance = 1;
    apply(remove_one);
    job = index.find("app.ns.web.default");
    REQUIRE(job);
    CHECK_FALSE(name_exists(*job, name));

    // Another job's entry takes instance 0's nsip: web has no entry left.
    TableEntry other = web(0);
    other.appname = "Other";
    apply(upsert(other));
    CHECK_FALSE(index.find("app.ns.web.default"));
    CHECK(index.find("other.ns.web.default"));

    TableChange replace = change(TableChange::Kind::replace_job);
    replace.job = "App.ns.Web.default";
    replace.entries = {web(3)};
    apply(replace);
    REQUIRE(index.find("app.ns.web.default"));
    TableChange remove_nsip = change(TableChange::Kind::remove_nsip);
    remove_nsip.nsip = web(0).nsip;
    apply(remove_nsip);
    CHECK_FALSE(index.find("other.ns.web.default"));
    TableChange remove_job = change(TableChange::Kind::remove_job);
    remove_job.job = "App.ns.Web.default";
    apply(remove_job);
    CHECK(index.size() == 0);
}
