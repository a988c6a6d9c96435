// The store's reader (store/store_reader.hpp): pages of the listing from a
// cursor with the filters, and whole listings of one moment (a snapshot that
// writes committed after it do not change), on a real database file.
#include <doctest/doctest.h>

#include <string>

#include "model/json_value.hpp"
#include "store/store_reader.hpp"
#include "store_fixture.hpp"

using namespace coapfleet;
using namespace coapfleet::server;
using namespace coapfleet::server::testing;

namespace {

model::node_registration node(const std::string& id) {
  model::node_registration r;
  r.node_id = id;
  r.hostname = id + "-host";
  r.ip_address = "127.1.0.1";
  r.port = 5683;
  r.services = {"sshd"};
  return r;
}

std::unique_ptr<store_reader> reader_ok(const std::string& path) {
  std::string err;
  auto r = store_reader::open(path, err);
  INFO(err);
  REQUIRE(r != nullptr);
  return r;
}

/// The ids of a listing body, and its `next` ("-" when absent, "" when null).
std::string ids(const std::string& body, std::string* next = nullptr) {
  auto doc = model::json_document::parse(body);
  REQUIRE(doc.ok());
  std::string out;
  for (auto n : doc.root()["nodes"].elements())
    out += (out.empty() ? "" : ",") + n["node_id"].as_string();
  if (next) {
    auto v = doc.root()["next"];
    *next = v.is_string() ? v.as_string() : v.is_null() ? "" : "-";
  }
  return out;
}

constexpr model::millis now = 1'000'000;
const liveness_limits limits{60'000, 180'000};

}  // namespace

TEST_CASE("reader: pages in node id order from a cursor, with a next cursor") {
  temp_db db;
  auto s = open_ok(db.path());
  // n1 and n3 seen just now (online), n2 two minutes ago (stale), n4 an hour ago (offline).
  REQUIRE(s->apply({put_node{node("n3"), 1, now, {}}, put_node{node("n1"), 1, now, {}},
                    put_node{node("n2"), 1, now - 120'000, {}}, put_node{node("n4"), 1, now - 3'600'000, {}}}));
  auto r = reader_ok(db.path());
  std::string body, next;
  model::nodes_query q;
  q.limit = 2;
  REQUIRE(r->page(q, now, limits, body));
  CHECK(ids(body, &next) == "n1,n2");
  CHECK(next == "n2");
  q.after = next;
  REQUIRE(r->page(q, now, limits, body));
  CHECK(ids(body, &next) == "n3,n4");
  CHECK(next == "");  // null: the last page
  q.after = "n4";
  REQUIRE(r->page(q, now, limits, body));
  CHECK(ids(body, &next) == "");
  CHECK(next == "");
  q.after = "n1a";  // not an id: the page starts after where it would be
  REQUIRE(r->page(q, now, limits, body));
  CHECK(ids(body) == "n2,n3");

  SUBCASE("status filter: pages of the matches only, status as of now") {
    model::nodes_query online;
    online.status = "online";
    online.limit = 1;
    REQUIRE(r->page(online, now, limits, body));
    CHECK(ids(body, &next) == "n1");
    CHECK(next == "n1");
    online.after = "n1";
    REQUIRE(r->page(online, now, limits, body));
    CHECK(ids(body, &next) == "n3");
    CHECK(next == "");  // n4 does not match: no next page
    model::nodes_query stale;
    stale.status = "stale";
    REQUIRE(r->page(stale, now, limits, body));  // limit 0: all, no next
    CHECK(ids(body, &next) == "n2");
    CHECK(next == "-");
    auto doc = model::json_document::parse(body);
    CHECK(doc.root()["nodes"].at(0)["status"].as_string() == "stale");
    // An hour later, every node is offline.
    stale.status = "offline";
    REQUIRE(r->page(stale, now + 3'600'000, limits, body));
    CHECK(ids(body) == "n1,n2,n3,n4");
  }
  SUBCASE("node_id: that node, or nothing") {
    model::nodes_query one;
    one.node_id = "n3";
    REQUIRE(r->page(one, now, limits, body));
    CHECK(ids(body) == "n3");
    one.node_id = "n";
    REQUIRE(r->page(one, now, limits, body));
    CHECK(ids(body) == "");
    one.node_id = "n3";
    one.limit = 5;
    one.after = "n3";
    REQUIRE(r->page(one, now, limits, body));
    CHECK(ids(body, &next) == "");
    CHECK(next == "");
  }
}

TEST_CASE("reader: a snapshot is the listing of one moment, read a chunk at a time") {
  temp_db db;
  auto s = open_ok(db.path());
  std::vector<model::write_op> ops;
  for (int i = 0; i < 300; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "node-%03d", i);
    ops.emplace_back(put_node{node(id), 1, now, {}});
  }
  REQUIRE(s->apply(ops));
  auto r = reader_ok(db.path());
  std::string whole;
  REQUIRE(r->page(model::nodes_query{}, now, limits, whole));
  auto snap = r->begin(model::nodes_query{}, now, limits);
  REQUIRE(snap != nullptr);
  // Written after the snapshot began: a new node, a changed one.
  model::health_report h;
  h.node_id = "node-000";
  h.cpu_percent = 99;
  REQUIRE(s->apply({put_node{node("node-9999"), 2, now, {}}, put_health{h, now}}));
  std::string body;
  bool done = false;
  int chunks = 0;
  while (!done) {
    REQUIRE(snap->next(4096, body, done));
    ++chunks;
    REQUIRE(chunks < 1000);
  }
  CHECK(chunks > 10);  // a chunk at a time, not all at once
  CHECK(body == whole);
  // A page read now sees the writes.
  std::string after;
  REQUIRE(r->page(model::nodes_query{}, now, limits, after));
  CHECK(after.find("node-9999") != std::string::npos);
  CHECK(after.find("\"cpu_percent\":99") != std::string::npos);
  CHECK(body.find("node-9999") == std::string::npos);
  // With a status filter: only the matches.
  model::nodes_query offline_only;
  offline_only.status = "offline";
  auto offline = r->begin(offline_only, now, limits);
  REQUIRE(offline != nullptr);
  std::string none;
  done = false;
  while (!done)
    REQUIRE(offline->next(1024, none, done));
  CHECK(none == "{\"nodes\":[]}");
}

TEST_CASE("reader: health=healthy|unhealthy lists by the latest report's verdict") {
  temp_db db;
  auto s = open_ok(db.path());
  REQUIRE(s->apply({put_node{node("n1"), 1, now, {}}, put_node{node("n2"), 1, now, {}},
                    put_node{node("n3"), 1, now, {}}, put_node{node("n4"), 1, now, {}}}));
  auto verdict = [](const std::string& id, bool healthy) {
    model::health_report h;
    h.node_id = id;
    h.overall_healthy = healthy;
    return put_health{h, now};
  };
  // n4 never reported: neither healthy nor unhealthy.
  REQUIRE(s->apply({verdict("n1", false), verdict("n2", true), verdict("n3", false)}));
  auto r = reader_ok(db.path());
  model::nodes_query q;
  q.health = "unhealthy";
  std::string body;
  REQUIRE(r->page(q, now, limits, body));
  CHECK(ids(body) == "n1,n3");
  q.limit = 1;
  body.clear();
  REQUIRE(r->page(q, now, limits, body));
  std::string next;
  CHECK(ids(body, &next) == "n1");
  CHECK(next == "n1");
  q.after = next;
  body.clear();
  REQUIRE(r->page(q, now, limits, body));
  CHECK(ids(body, &next) == "n3");
  CHECK(next.empty());
  model::nodes_query healthy;
  healthy.health = "healthy";
  // A filtered page reads a bounded number of rows: fewer nodes, and a
  // cursor past what it read.
  r->set_page_scan(2);
  model::nodes_query few;
  few.health = "unhealthy";
  few.limit = 10;
  body.clear();
  REQUIRE(r->page(few, now, limits, body));
  CHECK(ids(body, &next) == "n1");
  CHECK(next == "n2");
  few.after = next;
  body.clear();
  REQUIRE(r->page(few, now, limits, body));
  CHECK(ids(body, &next) == "n3");
  CHECK(next.empty());  // n4 was the last row: nothing after it
  // A whole listing with a filter reads that many rows per call, too: a
  // call may add nothing, the next goes on.
  model::nodes_query sick;
  sick.health = "unhealthy";
  auto sparse = r->begin(sick, now, limits);
  REQUIRE(sparse != nullptr);
  body.clear();
  bool over = false;
  int calls = 0;
  while (!over) {
    REQUIRE(sparse->next(1 << 20, body, over));
    REQUIRE(++calls < 100);
  }
  CHECK(calls >= 2);
  CHECK(ids(body) == "n1,n3");
  r->set_page_scan(store_reader::default_page_scan);
  auto snap = r->begin(healthy, now, limits);
  REQUIRE(snap != nullptr);
  body.clear();
  bool done = false;
  while (!done)
    REQUIRE(snap->next(64, body, done));
  CHECK(ids(body) == "n2");
}

TEST_CASE("reader: the nodes of a change list, by id, in one read") {
  temp_db db;
  auto s = open_ok(db.path());
  REQUIRE(s->apply({put_node{node("n1"), 1, now, {}}, put_node{node("n2"), 1, now - 120'000, {}},
                    put_node{node("n3"), 1, now, {}}}));
  auto r = reader_ok(db.path());
  std::string nodes;
  REQUIRE(r->nodes({"n2", "ghost", "n3"}, now, limits, nodes));
  auto body = model::encode_node_changes(4, 5, false, nodes);
  CHECK(ids(body) == "n2,n3");  // an id that is not there is left out
  auto doc = model::json_document::parse(body);
  REQUIRE(doc.ok());
  CHECK(doc.root()["from"].as_number() == 4);
  CHECK(doc.root()["to"].as_number() == 5);
  CHECK_FALSE(doc.root()["reset"].as_bool());
  CHECK(doc.root()["nodes"].at(0)["status"].as_string() == "stale");
  nodes.clear();
  REQUIRE(r->nodes({}, now, limits, nodes));
  CHECK(nodes == "[]");
}

TEST_CASE("reader: an in-memory database or a missing file is a clear error" * doctest::test_suite("sqlite")) {
  std::string err;
  CHECK(store_reader::open(":memory:", err) == nullptr);
  CHECK(err.find("in-memory") != std::string::npos);
  err.clear();
  CHECK(store_reader::open("/nonexistent/dir/fleet.db", err) == nullptr);
  CHECK(err.find("/nonexistent/dir/fleet.db") != std::string::npos);
}
