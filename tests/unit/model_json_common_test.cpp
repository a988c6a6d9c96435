// Unit tests of what every model/json decoder and encoder shares: the request
// body's envelope (empty, invalid JSON, not an object), error bodies, times.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "model/journal.hpp"
#include "model/json.hpp"
#include "model/json_value.hpp"
#include "model_json_helpers.hpp"

using namespace coapfleet::model;
using namespace model_json_test;

namespace {

const std::string empty_body_message =
  "empty body: this request needs a JSON object; send one with coap-client -f - "
  "(echo '{...}' | coap-client -m post -f - URL) or -e '{...}'";

}  // namespace

TEST_CASE("every request decoder rejects an empty body with the how-to message") {
  for (std::string body : {"", " ", "\n", " \t\r\n "}) {
    CAPTURE(body);
    check_problem(decode_health_report(body).err, empty_body_message, "");
    check_problem(decode_node_registration(body, "127.0.0.1").err, empty_body_message, "");
    check_problem(decode_updates_request(body).err, empty_body_message, "");
    check_problem(decode_system_request(body).err, empty_body_message, "");
    check_problem(decode_update_notification(body).err, empty_body_message, "");
  }
}

TEST_CASE("invalid JSON names the parser's complaint and the offset") {
  auto d = decode_health_report(R"({"node_id": "a",})");
  CHECK_FALSE(d.ok());
  CHECK(d.err.error.rfind("invalid JSON: ", 0) == 0);
  CHECK(d.err.error.find(" at offset ") != std::string::npos);
  CHECK(d.err.field.empty());

  auto truncated = decode_node_registration(seed_register_truncated, "127.0.0.1");
  CHECK(truncated.err.error.rfind("invalid JSON: ", 0) == 0);

  auto trailing = decode_system_request(R"({"action":"status"} x)");
  CHECK(trailing.err.error.rfind("invalid JSON: ", 0) == 0);

  // Invalid UTF-8 never gets into the model (it could not be re-encoded).
  auto bad_utf8 = decode_health_report("{\"node_id\":\"a\",\"timestamp\":\"\xff\xfe\"}");
  CHECK(bad_utf8.err.error.rfind("invalid JSON: ", 0) == 0);

  auto garbage = decode_updates_request("not json at all");
  CHECK(garbage.err.error == "invalid JSON: Invalid value. at offset 1");
}

TEST_CASE("a JSON value other than an object is rejected") {
  for (std::string body : {"[]", R"(["node_id"])", "42", "\"text\"", "null", "true"}) {
    CAPTURE(body);
    check_problem(decode_health_report(body).err, "request body must be a JSON object", "");
    check_problem(decode_node_registration(body, "127.0.0.1").err,
                  "request body must be a JSON object", "");
    check_problem(decode_updates_request(body).err, "request body must be a JSON object", "");
    check_problem(decode_system_request(body).err, "request body must be a JSON object", "");
  }
}

TEST_CASE("format_time") {
  CHECK(format_time(0) == "1970-01-01T00:00:00Z");
  CHECK(format_time(1758103200000) == "2025-09-17T10:00:00Z");
  CHECK(format_time(1758103200999) == "2025-09-17T10:00:00Z");
  CHECK(format_time(951868799999) == "2000-02-29T23:59:59Z");
  CHECK(format_time(-1) == "1969-12-31T23:59:59Z");
}

TEST_CASE("encode_problem and encode_error") {
  auto p = parse_json(encode_problem({"missing field: node_id", "node_id"}));
  CHECK(str(p, "error") == "missing field: node_id");
  CHECK(str(p, "field") == "node_id");
  CHECK(p.MemberCount() == 2);

  auto no_field = parse_json(encode_problem({"request body must be a JSON object", ""}));
  CHECK(no_field.MemberCount() == 1);
  CHECK_FALSE(has(no_field, "field"));

  auto e = parse_json(encode_error("node not registered", {{"node_id", "a\"b"}}));
  CHECK(str(e, "error") == "node not registered");
  CHECK(str(e, "node_id") == "a\"b");
  CHECK(parse_json(encode_error("x")).MemberCount() == 1);

  // A decoder's problem, passed through, survives as valid JSON.
  auto typo = parse_json(encode_problem(decode_health_report(seed_health_typo).err));
  CHECK(str(typo, "field") == "node_id");
  CHECK(str(typo, "error").find("\"node id\"") != std::string::npos);
}

TEST_CASE("a repeated member name is refused, naming the key") {
  check_problem(decode_node_registration(R"({"node_id":"a","node_id":"b"})", "127.0.0.1").err,
                "duplicate key: node_id", "node_id");
  check_problem(decode_health_report(R"({"node_id":"a","cpu_percent":1,"cpu_percent":2})").err,
                "duplicate key: cpu_percent", "cpu_percent");
  check_problem(decode_system_request(R"({"action":"status","action":"restart"})").err,
                "duplicate key: action", "action");
  check_problem(decode_updates_request(R"({"action":"install","job_id":"j","job_id":"k"})").err,
                "duplicate key: job_id", "job_id");
  check_problem(decode_update_notification(R"({"job_id":"j","node_id":"n","node_id":"n"})").err,
                "duplicate key: node_id", "node_id");
  check_problem(decode_keys_request(R"({"action":"list","action":"list"})").err,
                "duplicate key: action", "action");
  // Same value twice is a duplicate too: the body says two things.
  check_problem(decode_system_request(R"({"action":"status","action":"status"})").err,
                "duplicate key: action", "action");
}

TEST_CASE("a repeated member name is refused at any depth, with its path") {
  check_problem(
    decode_health_report(R"({"node_id":"a","services_status":{"web":true,"db":true,"web":false}})")
      .err,
    "duplicate key: services_status.web", "web");
  check_problem(decode_node_registration(
                  R"({"node_id":"a","system_info":{"os":"linux","os":"other"}})", "127.0.0.1")
                  .err,
                "duplicate key: system_info.os", "os");
  // Inside arrays, and in members the decoder never reads.
  check_problem(decode_health_report(R"({"node_id":"a","extra":[1,{"x":{"k":1,"k":2}}]})").err,
                "duplicate key: extra[1].x.k", "k");
  check_problem(decode_health_report(R"({"node_id":"a","z":[[{},{"q":1,"q":1}]]})").err,
                "duplicate key: z[0][1].q", "q");
}

TEST_CASE("names that differ only in length or case, or are empty once, are not repeats") {
  CHECK(decode_health_report(R"({"node_id":"a","services_status":{"web":true,"Web":true,"web2":true,"":true}})")
          .ok());
  CHECK(decode_health_report(R"({"node_id":"a","x":{"a":1},"y":{"a":1},"z":[{"a":1},{"a":1}]})")
          .ok());
  // Names with NULs are refused before any comparison (no store keeps them alike).
  CHECK(decode_health_report("{\"node_id\":\"a\",\"x\":{\"a\\u0000b\":1,\"a\\u0000c\":2}}")
          .err.error.find("NUL") != std::string::npos);
}

TEST_CASE("repeats are found in large objects too, at the top and nested") {
  // More members than the pairwise comparison handles: the sorted path.
  for (int count : {2, 16, 17, 40, 1000}) {
    CAPTURE(count);
    std::string services;
    std::string top;
    for (int i = 0; i < count; ++i) {
      services += (i ? "," : "") + ("\"s" + std::to_string(i) + "\":true");
      top += ",\"f" + std::to_string(i) + "\":" + std::to_string(i);
    }
    auto unique = R"({"node_id":"a")" + top + R"(,"services_status":{)" + services + "}}";
    CHECK(decode_health_report(unique).ok());
    auto last = "s" + std::to_string(count - 1);
    auto nested = R"({"node_id":"a")" + top + R"(,"services_status":{)" + services + ",\"" + last
                  + "\":false}}";
    check_problem(decode_health_report(nested).err, "duplicate key: services_status." + last, last);
    auto at_top = R"({"node_id":"a")" + top + R"(,"f0":7})";
    check_problem(decode_health_report(at_top).err, "duplicate key: f0", "f0");
  }
}

TEST_CASE("stored data written before repeats were refused still reads") {
  // Health and attributes are lists of pairs: a store may hold repeats that
  // older versions accepted. They read back as written.
  auto stored = decode_health_report(R"({"node_id":"a","services_status":{"web":true,"web":false}})",
                                     json_source::store);
  REQUIRE(stored.ok());
  CHECK(stored.value.services_status.size() == 2);
  auto attrs = decode_attributes(R"({"os":"linux","os":"other"})");
  REQUIRE(attrs.ok());
  CHECK(attrs.value.size() == 2);
}

TEST_CASE("bodies nested deeper than 64 levels are refused before parsing") {
  // The parser recurses once per level: 200 KB of '[' overflowed a thread's
  // stack (64 KB in a sanitizer build).
  const std::string deep(200000, '[');
  auto d = decode_updates_request(deep);
  REQUIRE(!d.ok());
  CHECK(d.err.error == "invalid JSON: arrays and objects nested deeper than 64 levels");
  // 64 levels inside the object (65 with it) still parse; brackets in strings never count.
  std::string nested64 = R"({"a":)" + std::string(63, '[') + std::string(63, ']') + "}";
  CHECK(decode_attributes(nested64).err.error.find("nested deeper") == std::string::npos);
  auto in_string = R"({"node_id":"n1","hostname":")" + std::string(100, '[') + "\"}";
  CHECK(decode_node_registration(in_string, "127.0.0.1").ok());

  job_journal j;
  std::string warning;
  CHECK(!decode_journal(R"({"jobs":[{"phase":"queued","note":)" + deep + "}]}", j, warning));
  std::deque<update_report> outbox;
  CHECK(!decode_outbox("[" + deep, outbox));
}

TEST_CASE("a NUL byte in a body is invalid JSON, not the end of the body") {
  const std::string body("{\"action\":\"status\"}\0{\"action\":\"restart\"}", 40);
  auto d = decode_system_request(body);
  REQUIRE(!d.ok());
  CHECK(d.err.error == "invalid JSON: a NUL byte at offset 19");
  CHECK(decode_system_request(R"({"action":"status"})").ok());
  // Escaped, it is refused too: no store keeps it alike.
  CHECK(decode_strings(R"(["a\u0000b"])").err.error
        == "text may not contain the NUL character (\\u0000)");

  job_journal j;
  std::string warning;
  CHECK(!decode_journal(std::string("{\"jobs\":[]}\0", 12), j, warning));
}

TEST_CASE("artifact metadata with a number no int64_t holds is invalid") {
  const std::string sha(64, 'a');
  artifact_info a;
  REQUIRE(decode_artifact_meta(R"({"size":10,"sha256":")" + sha + R"(","uploaded_at":5})", a));
  CHECK(a.size == 10);
  CHECK(a.uploaded_at == 5);
  // Converting these to int64_t was undefined behaviour (found by fuzz/json).
  CHECK(!decode_artifact_meta(R"({"size":8.9e36,"sha256":")" + sha + "\"}", a));
  CHECK(!decode_artifact_meta(R"({"uploaded_at":-1e300,"sha256":")" + sha + "\"}", a));
}

TEST_CASE("a lone low surrogate escape is invalid JSON") {
  // RapidJSON 1.1.0 turned it into bytes that are not UTF-8: the spec,
  // encoded again, no longer decoded (found by fuzz/agent_notification).
  auto lone = decode_strings(R"(["a\ude5ab"])");
  REQUIRE(!lone.ok());
  CHECK(lone.err.error == "invalid JSON: a lone UTF-16 surrogate (\\ude5a) at offset 3");
  // A pair is one character; an escaped backslash before "u" is no escape.
  auto pair = decode_strings(R"(["\ud83d\ude00","\\ude5a"])");
  REQUIRE(pair.ok());
  CHECK(pair.value == std::vector<std::string>{"\xf0\x9f\x98\x80", "\\ude5a"});
  CHECK(decode_strings(encode_strings(pair.value)).value == pair.value);
}

TEST_CASE("a number beyond a double's range is invalid JSON, not infinity") {
  // RapidJSON 1.1.0 reads this as infinity, which no encoder writes back.
  auto h = decode_health_report(R"({"node_id":"a","cpu_percent":6711593562935671157e303})");
  REQUIRE(!h.ok());
  CHECK(h.err.error == "invalid JSON: a number beyond the range of a double");
  CHECK_FALSE(json_document::parse("6711593562935671157e303").ok());
  CHECK(json_document::parse("1.5e308").ok());
}
