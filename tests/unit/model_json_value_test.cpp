// Unit tests of model/json_value (reading any JSON through views) and
// model/json_builder (writing it front to back).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "model/json_builder.hpp"
#include "model/json_value.hpp"

using namespace coapfleet::model;

namespace {

json_document parsed(std::string_view text) {
  auto d = json_document::parse(text);
  INFO("JSON: ", std::string(text));
  REQUIRE_MESSAGE(d.ok(), d.error());
  return d;
}

}  // namespace

TEST_CASE("json_document: parse errors say what and where") {
  auto bad = json_document::parse(R"({"a": 1,})");
  CHECK_FALSE(bad.ok());
  CHECK(bad.error_offset() == 8);
  CHECK(bad.error() == "invalid JSON: Missing a name for object member. at offset 8");
  CHECK_FALSE(bad.root().exists());
  CHECK(bad.root().kind() == json_kind::absent);

  auto empty = json_document::parse("");
  CHECK_FALSE(empty.ok());
  CHECK(empty.error().find("empty") != std::string::npos);

  auto trailing = json_document::parse("{} {}");
  CHECK_FALSE(trailing.ok());
  CHECK(trailing.error_offset() == 3);

  json_document none;
  CHECK_FALSE(none.ok());
  CHECK_FALSE(none.error().empty());
  CHECK_FALSE(none.root().exists());

  auto good = parsed(" [1] ");
  CHECK(good.error().empty());
  CHECK(good.error_offset() == 0);
}

TEST_CASE("json_document: any value may be the root, and text need not end in NUL") {
  CHECK(parsed("42").root().as_int() == 42);
  CHECK(parsed("\"x\"").root().as_string() == "x");
  CHECK(parsed("null").root().is_null());
  std::string text = R"({"a":1}garbage)";
  auto d = parsed(std::string_view(text).substr(0, 7));
  CHECK(d.root()["a"].as_int() == 1);
}

TEST_CASE("json_value: kinds") {
  auto d = parsed(R"({"n":null,"t":true,"f":false,"i":-3,"x":2.5,"s":"hi","a":[],"o":{}})");
  auto r = d.root();
  CHECK(r.kind() == json_kind::object);
  CHECK(r["n"].kind() == json_kind::null);
  CHECK(r["t"].kind() == json_kind::boolean);
  CHECK(r["f"].kind() == json_kind::boolean);
  CHECK(r["i"].kind() == json_kind::number);
  CHECK(r["x"].kind() == json_kind::number);
  CHECK(r["s"].kind() == json_kind::string);
  CHECK(r["a"].kind() == json_kind::array);
  CHECK(r["o"].kind() == json_kind::object);
  CHECK(r["missing"].kind() == json_kind::absent);

  CHECK(r["n"].exists());
  CHECK(r["n"].is_null());
  CHECK_FALSE(r["missing"].exists());
  CHECK_FALSE(r["missing"].is_null());
  CHECK(r["t"].is_bool());
  CHECK(r["x"].is_number());
  CHECK(r["s"].is_string());
  CHECK(r["a"].is_array());
  CHECK(r["o"].is_object());
  CHECK_FALSE(r["o"].is_array());
}

TEST_CASE("json_value: lookups of what is not there are absent, never an error") {
  auto d = parsed(R"({"a":{"b":[10,20]},"s":"text"})");
  auto r = d.root();
  CHECK(r["a"]["b"].at(1).as_int() == 20);
  CHECK_FALSE(r["a"]["b"].at(2).exists());
  CHECK_FALSE(r["a"]["c"]["d"].exists());
  CHECK_FALSE(r["s"]["x"].exists());   // member of a string
  CHECK_FALSE(r.at(0).exists());       // element of an object
  CHECK_FALSE(json_value().at(0).exists());
  CHECK_FALSE(json_value()["x"].exists());
  CHECK(json_value().size() == 0);
  CHECK(json_value().to_json().empty());
}

TEST_CASE("json_value: readers give the fallback for another kind") {
  auto d = parsed(
    R"({"s":"text","x":2.75,"neg":-2.75,"i":7,"big":9007199254740993,"t":true,"n":null})");
  auto r = d.root();
  CHECK(r["s"].as_string() == "text");
  CHECK(r["x"].as_string().empty());
  CHECK(r["x"].as_string("-") == "-");
  CHECK(r["missing"].as_string("none") == "none");

  CHECK(r["x"].as_number() == 2.75);
  CHECK(r["i"].as_number() == 7.0);
  CHECK(r["s"].as_number() == 0);
  CHECK(r["n"].as_number(-1) == -1);

  CHECK(r["i"].as_int() == 7);
  CHECK(r["x"].as_int() == 2);    // cut towards zero
  CHECK(r["neg"].as_int() == -2);
  CHECK(r["big"].as_int() == 9007199254740993LL);  // exact past 2^53
  CHECK(r["s"].as_int(5) == 5);
  CHECK(r["t"].as_int() == 0);

  CHECK(r["t"].as_bool());
  CHECK_FALSE(r["i"].as_bool());
  CHECK(r["missing"].as_bool(true));
}

TEST_CASE("json_value: strings keep their length, escapes and NULs") {
  auto d = parsed(R"({"a\u0000b":"x\u0000y","q":"\"\\\n\u00e9"})");
  auto r = d.root();
  CHECK(r[std::string_view("a\0b", 3)].as_string() == std::string("x\0y", 3));
  CHECK_FALSE(r["a"].exists());  // a name is compared whole, not up to a NUL
  CHECK(r["q"].as_string() == "\"\\\n\xc3\xa9");
}

TEST_CASE("json_value: arrays and string lists") {
  auto d = parsed(R"({"a":["x",1,"y",null,"z"],"e":[],"o":{"k":1}})");
  auto r = d.root();
  CHECK(r["a"].size() == 5);
  CHECK_FALSE(r["a"].empty());
  CHECK(r["e"].empty());
  CHECK(r["a"].as_strings() == std::vector<std::string>{"x", "y", "z"});
  CHECK(r["o"].as_strings().empty());
  CHECK(r["missing"].as_strings().empty());

  std::vector<std::string> seen;
  for (json_value e : r["a"].elements())
    seen.push_back(e.to_json());
  CHECK(seen == std::vector<std::string>{"\"x\"", "1", "\"y\"", "null", "\"z\""});
  CHECK(r["a"].elements().size() == 5);
  CHECK(r["o"].elements().empty());   // an object has members, not elements
  CHECK(r["e"].elements().begin() == r["e"].elements().end());
}

TEST_CASE("json_value: members in document order, duplicates kept, the first found") {
  auto d = parsed(R"({"z":1,"a":{"k":"v"},"m":[true],"z":2})");
  auto r = d.root();
  CHECK(r.size() == 4);
  std::vector<std::pair<std::string, std::string>> seen;
  for (auto m : r.members())
    seen.emplace_back(std::string(m.name), m.value.to_json());
  CHECK(seen == std::vector<std::pair<std::string, std::string>>{
                  {"z", "1"}, {"a", R"({"k":"v"})"}, {"m", "[true]"}, {"z", "2"}});
  CHECK(r["z"].as_int() == 1);
  CHECK(r.member_at(1).name == "a");
  CHECK_FALSE(r.member_at(4).value.exists());
  CHECK(r.member_at(4).name.empty());
  CHECK(r["m"].members().empty());   // an array has elements, not members
}

TEST_CASE("json_value: to_json writes the value compactly, numbers as the parser read them") {
  auto text = R"({ "nodes" : [ { "id" : "n1", "cpu" : 12.5, "ok" : true, "n" : null,
                  "big" : 18446744073709551615, "neg" : -7, "e" : 1e3 } ] })";
  auto d = parsed(text);
  CHECK(d.root().to_json()
        == R"({"nodes":[{"id":"n1","cpu":12.5,"ok":true,"n":null,"big":18446744073709551615,"neg":-7,"e":1000.0}]})");
  CHECK(d.root()["nodes"].at(0)["cpu"].to_json() == "12.5");
  CHECK(parsed(R"("a\"b\u0001")").root().to_json() == R"("a\"b\u0001")");
}

TEST_CASE("json_value: views stay valid when the document moves") {
  auto d = parsed(R"({"a":[1,2,3]})");
  auto a = d.root()["a"];
  json_document moved = std::move(d);
  CHECK(a.at(2).as_int() == 3);
  json_document assigned;
  assigned = std::move(moved);
  CHECK(a.size() == 3);
  CHECK(assigned.root()["a"].at(0).as_int() == 1);
}

TEST_CASE("json_builder: flat request bodies") {
  std::vector<std::string> targets = {"n1", "n\"2"};
  std::string name = "fw";
  auto text = json_builder()
                .begin_object()
                .member("name", name)
                .member("action", "install")
                .member("timeout_seconds", 30LL)
                .member("dry", false)
                .member("target_nodes", targets)
                .member("none", std::vector<std::string>{})
                .end_object()
                .text();
  CHECK(text
        == R"({"name":"fw","action":"install","timeout_seconds":30,"dry":false,"target_nodes":["n1","n\"2"],"none":[]})");
  auto back = parsed(text);
  CHECK(back.root()["target_nodes"].as_strings() == targets);
}

TEST_CASE("json_builder: nested values, every kind") {
  json_builder b;
  CHECK_FALSE(b.complete());
  b.begin_array();
  b.begin_object().key("path").string("/nodes").member("obs", true).end_object();
  b.begin_object()
    .key("n")
    .null()
    .key("x")
    .number(0.5)
    .key("nan")
    .number(std::nan(""))
    .key("inf")
    .number(std::numeric_limits<double>::infinity())
    .key("i")
    .integer(-9223372036854775807LL - 1)
    .key("list")
    .strings({"a"})
    .key("empty")
    .string(std::string_view())
    .end_object();
  CHECK_FALSE(b.complete());
  b.end_array();
  CHECK(b.complete());
  CHECK(b.text()
        == R"([{"path":"/nodes","obs":true},{"n":null,"x":0.5,"nan":null,"inf":null,"i":-9223372036854775808,"list":["a"],"empty":""}])");
}

TEST_CASE("json_builder: a moved builder goes on where it was") {
  json_builder a;
  a.begin_object().member("k", "v");
  json_builder b = std::move(a);
  b.end_object();
  CHECK(b.complete());
  CHECK(b.text() == R"({"k":"v"})");
}
