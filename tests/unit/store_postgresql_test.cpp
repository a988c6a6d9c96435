// What only the PostgreSQL engine has: a version row instead of
// user_version, a connection that can be lost or stop answering. These run
// in store_tests_postgresql only (the "postgresql" suite).
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "store/store.hpp"
#include "store/store_reader.hpp"
#include "store_fixture.hpp"

using namespace coapfleet;
using namespace coapfleet::server;
using namespace coapfleet::server::testing;

namespace {

model::node_registration reg(const std::string& id) {
  model::node_registration r;
  r.node_id = id;
  r.hostname = "host";
  r.ip_address = "127.1.0.1";
  r.port = 5683;
  return r;
}

/// A second connection that holds a lock on the nodes table while it lives.
struct table_lock {
  PGconn* c;
  explicit table_lock(const std::string& location) : c(PQconnectdb(location.c_str())) {
    REQUIRE(PQstatus(c) == CONNECTION_OK);
    PQclear(PQexec(c, "BEGIN"));
    PGresult* r = PQexec(c, "LOCK TABLE nodes IN ACCESS EXCLUSIVE MODE");
    REQUIRE(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
  }
  ~table_lock() {
    PQclear(PQexec(c, "ROLLBACK"));
    PQfinish(c);
  }
};

}  // namespace

TEST_SUITE("postgresql") {

TEST_CASE("postgresql: the schema version is a meta row; a newer one is refused") {
  temp_db db;
  REQUIRE(db.pg());
  { auto s = open_ok(db.path()); }
  CHECK(raw(db.path(), "SELECT value FROM meta WHERE name = 'schema_version'")
        == std::to_string(store::schema_version));
  // A second open finds the schema and changes nothing.
  { auto s = open_ok(db.path()); }
  CHECK(raw(db.path(), "SELECT count(*) FROM meta") == "3");
  raw(db.path(), "UPDATE meta SET value = 99 WHERE name = 'schema_version'");
  std::string err;
  CHECK(store::open(db.path(), err) == nullptr);
  CHECK(err.find("schema version 99 is newer") != std::string::npos);
}

TEST_CASE("postgresql: node ids sort byte by byte, as on SQLite") {
  temp_db db;
  auto s = open_ok(db.path());
  REQUIRE(s->apply({put_node{reg("b"), 1, 1, {}}, put_node{reg("B"), 1, 1, {}},
                    put_node{reg("a-1"), 1, 1, {}}, put_node{reg("a_1"), 1, 1, {}}}));
  auto nodes = s->load_nodes();
  REQUIRE(nodes.size() == 4);
  CHECK(nodes[0].reg.node_id == "B");
  CHECK(nodes[1].reg.node_id == "a-1");
  CHECK(nodes[2].reg.node_id == "a_1");
  CHECK(nodes[3].reg.node_id == "b");
}

TEST_CASE("postgresql: a lost connection fails one call, the next reconnects") {
  temp_db db;
  auto s = open_ok(db.path());
  REQUIRE(s->apply({put_node{reg("n1"), 1, 1, {}}}));
  // Another session ends the store's (as a restart of the server would).
  raw(db.path(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                 " WHERE application_name = 'coapfleet' AND pid <> pg_backend_pid()");
  bool first = s->apply({put_node{reg("n2"), 2, 2, {}}});
  if (!first)
    CHECK(!s->last_error().empty());
  REQUIRE(s->apply({put_node{reg("n3"), 3, 3, {}}}));
  auto nodes = s->load_nodes();
  CHECK(nodes.size() == (first ? 3u : 2u));
  CHECK(nodes.back().reg.node_id == "n3");
}

TEST_CASE("postgresql: a store that does not answer fails the call within the timeout") {
  temp_db db;
  auto s = open_ok(db.path());
  s->set_busy_timeout(300);
  REQUIRE(s->apply({put_node{reg("n1"), 1, 1, {}}}));
  {
    table_lock lock(db.path());
    auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(s->apply({put_node{reg("n2"), 2, 2, {}}}));
    auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(waited < std::chrono::seconds(5));
    CHECK(s->last_error().find("no answer within 300 ms") != std::string::npos);
  }
  // Nothing of the failed batch was stored; the store works again.
  REQUIRE(s->apply({put_node{reg("n3"), 3, 3, {}}}));
  auto nodes = s->load_nodes();
  REQUIRE(nodes.size() == 2);
  CHECK(nodes[1].reg.node_id == "n3");
}

TEST_CASE("postgresql: the reader lists from its own read-only connection") {
  temp_db db;
  auto s = open_ok(db.path());
  REQUIRE(s->apply({put_node{reg("n1"), 1, 1, {}}, put_node{reg("n2"), 1, 1, {}}}));
  std::string err;
  auto r = store_reader::open(db.path(), err);
  INFO(err);
  REQUIRE(r != nullptr);
  std::string body;
  model::nodes_query q;
  q.limit = 1;
  REQUIRE(r->page(q, 1, {}, body));
  CHECK(body.find("\"n1\"") != std::string::npos);
  CHECK(body.find("\"next\":\"n1\"") != std::string::npos);
}

}  // TEST_SUITE
