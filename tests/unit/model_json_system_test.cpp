// Unit tests of model/json for the server itself: POST /system bodies and the
// GET /system and status answers.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "model/json.hpp"
#include "model_json_helpers.hpp"

using namespace coapfleet::model;
using namespace model_json_test;

TEST_CASE("decode_system_request: the seed's actions") {
  auto restart = decode_system_request(R"({"action": "restart"})");
  REQUIRE(restart.ok());
  CHECK(restart.value == system_action::restart);
  auto shutdown = decode_system_request(R"({"action": "shutdown"})");
  REQUIRE(shutdown.ok());
  CHECK(shutdown.value == system_action::shutdown);
  auto status = decode_system_request("{\"action\":\"status\"}\n");
  REQUIRE(status.ok());
  CHECK(status.value == system_action::status);

  CHECK(std::string{to_string(system_action::status)} == "status");
  CHECK(std::string{to_string(system_action::restart)} == "restart");
  CHECK(std::string{to_string(system_action::shutdown)} == "shutdown");
}

TEST_CASE("decode_system_request: errors") {
  check_problem(decode_system_request(R"({"action":"reboot"})").err,
                "unknown action: reboot (expected status, restart, shutdown)", "action");
  check_problem(decode_system_request("{}").err, "missing field: action", "action");
  check_problem(decode_system_request(R"({"action":true})").err, "field action must be a string",
                "action");
}

TEST_CASE("encode_system_info") {
  system_info s;
  s.timestamp = 1758103200000;
  s.uptime_seconds = 93784.5;
  s.version = "0.1.0";
  s.available_actions = {"restart", "shutdown", "status"};
  auto doc = parse_json(encode_system_info(s));
  CHECK(str(doc, "status") == "running");
  CHECK(str(doc, "timestamp") == "2025-09-17T10:00:00Z");
  CHECK(doc["uptime"].GetDouble() == 93784.5);
  CHECK(str(doc, "uptime_human") == "1d 02:03:04");
  CHECK(str(doc, "version") == "0.1.0");
  auto& e = doc["endpoints"];
  CHECK(str(e, "health") == "/health");
  CHECK(str(e, "nodes") == "/nodes");
  CHECK(str(e, "updates") == "/updates");
  CHECK(str(e, "system") == "/system");
  CHECK(str(e, "test") == "/test");
  CHECK(str(e, "artifacts") == "/artifacts");
  CHECK(str(e, "keys") == "/keys");
  CHECK(str(e, "discovery") == "/.well-known/core");
  REQUIRE(doc["available_actions"].Size() == 3);
  CHECK(std::string{doc["available_actions"][0].GetString()} == "restart");

  s.uptime_seconds = 3725;
  s.available_actions.clear();
  auto short_doc = parse_json(encode_system_info(s));
  CHECK(str(short_doc, "uptime_human") == "01:02:05");
  CHECK(short_doc["available_actions"].Size() == 0);
}

TEST_CASE("encode_system_status") {
  system_status s;
  s.timestamp = 1758103200000;
  s.database = "connected";
  s.uptime_seconds = 12;
  s.nodes = 4;
  s.jobs = 2;
  auto doc = parse_json(encode_system_status(s));
  CHECK(str(doc, "status") == "running");
  CHECK(str(doc, "timestamp") == "2025-09-17T10:00:00Z");
  CHECK(str(doc["services"], "main_server") == "running");
  CHECK(str(doc["services"], "database") == "connected");
  CHECK(str(doc, "action") == "status");
  CHECK(doc["uptime"].GetDouble() == 12);
  CHECK(doc["nodes"].GetUint() == 4);
  CHECK(doc["jobs"].GetUint() == 2);
}
