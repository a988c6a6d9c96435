// Unit tests of model/json for nodes and their health (json_decode.cpp,
// json_encode.cpp): PUT /health and POST /nodes bodies, node listings, the
// fleet's health, attributes; parsed back and checked field by field.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "model/json.hpp"
#include "model_json_helpers.hpp"

using namespace coapfleet::model;
using namespace model_json_test;

TEST_CASE("decode_health_report: the seed's example") {
  auto d = decode_health_report(seed_health);
  REQUIRE(d.ok());
  auto& h = d.value;
  CHECK(h.node_id == "node-123");
  CHECK(h.timestamp == "2025-09-17T10:00:00");
  CHECK(h.overall_healthy);
  CHECK(h.cpu_percent == doctest::Approx(15.5));
  CHECK(h.memory_percent == doctest::Approx(45.2));
  CHECK(h.disk_percent == doctest::Approx(30.1));
  CHECK(h.temperature == doctest::Approx(42.5));
  CHECK_FALSE(present(h.uptime_seconds));
  REQUIRE(h.services_status.size() == 4);
  CHECK(h.services_status[0] == std::pair<std::string, bool>{"systemd", true});
  CHECK(h.services_status[3] == std::pair<std::string, bool>{"docker", false});
  CHECK(h.error_messages == std::vector<std::string>{"Service docker is not running"});
}

TEST_CASE("decode_health_report: the seed's minimal body gets the defaults") {
  auto d = decode_health_report(R"({"node_id":"test"})");
  REQUIRE(d.ok());
  CHECK(d.value.node_id == "test");
  CHECK(d.value.overall_healthy);
  CHECK(d.value.timestamp.empty());
  CHECK_FALSE(present(d.value.cpu_percent));
  CHECK_FALSE(present(d.value.temperature));
  CHECK(d.value.services_status.empty());
  CHECK(d.value.error_messages.empty());
}

TEST_CASE("decode_health_report: the seed's \"node id\" typo names node_id") {
  auto d = decode_health_report(seed_health_typo);
  check_problem(d.err, "missing field: node_id (found \"node id\"; the field is spelled node_id)",
                "node_id");
}

TEST_CASE("decode_health_report: node_id missing, ill-typed or invalid") {
  check_problem(decode_health_report(R"({"cpu_percent": 1})").err, "missing field: node_id",
                "node_id");
  check_problem(decode_health_report(R"({"node_id": 5})").err, "field node_id must be a string",
                "node_id");
  check_problem(decode_health_report(R"({"node_id": null})").err,
                "field node_id must be a string", "node_id");
  check_problem(decode_health_report(R"({"node_id": "bad id!"})").err,
                "field node_id must be 1..64 characters of A-Z a-z 0-9 . _ -", "node_id");
}

TEST_CASE("decode_health_report: percents, temperature, uptime") {
  check_problem(decode_health_report(R"({"node_id":"n","cpu_percent":150})").err,
                "field cpu_percent must be between 0 and 100", "cpu_percent");
  check_problem(decode_health_report(R"({"node_id":"n","memory_percent":-0.5})").err,
                "field memory_percent must be between 0 and 100", "memory_percent");
  check_problem(decode_health_report(R"({"node_id":"n","disk_percent":100.01})").err,
                "field disk_percent must be between 0 and 100", "disk_percent");
  check_problem(decode_health_report(R"({"node_id":"n","cpu_percent":"high"})").err,
                "field cpu_percent must be a number or null", "cpu_percent");
  check_problem(decode_health_report(R"({"node_id":"n","temperature":-300})").err,
                "field temperature must be between -273 and 1000", "temperature");
  check_fails_on(decode_health_report(R"({"node_id":"n","temperature":1001})"), "temperature");
  check_fails_on(decode_health_report(R"({"node_id":"n","uptime_seconds":-1})"),
                 "uptime_seconds");
  check_fails_on(decode_health_report(R"({"node_id":"n","uptime_seconds":"1h"})"),
                 "uptime_seconds");

  auto bounds = decode_health_report(
    R"({"node_id":"n","cpu_percent":0,"memory_percent":100,"disk_percent":null,)"
    R"("temperature":-273,"uptime_seconds":12345.5})");
  REQUIRE(bounds.ok());
  CHECK(bounds.value.cpu_percent == 0);
  CHECK(bounds.value.memory_percent == 100);
  CHECK_FALSE(present(bounds.value.disk_percent));
  CHECK(bounds.value.temperature == -273);
  CHECK(bounds.value.uptime_seconds == doctest::Approx(12345.5));
}

TEST_CASE("decode_health_report: other ill-typed fields") {
  check_problem(decode_health_report(R"({"node_id":"n","overall_healthy":"yes"})").err,
                "field overall_healthy must be a boolean (true or false)", "overall_healthy");
  check_fails_on(decode_health_report(R"({"node_id":"n","timestamp":17})"), "timestamp");
  check_fails_on(decode_health_report(R"({"node_id":"n","services_status":{"ssh":"up"}})"),
                 "services_status");
  check_fails_on(decode_health_report(R"({"node_id":"n","services_status":["ssh"]})"),
                 "services_status");
  check_fails_on(decode_health_report(R"({"node_id":"n","error_messages":"disk full"})"),
                 "error_messages");
  check_fails_on(decode_health_report(R"({"node_id":"n","error_messages":["a", 1]})"),
                 "error_messages");
  auto unhealthy = decode_health_report(R"({"node_id":"n","overall_healthy":false})");
  REQUIRE(unhealthy.ok());
  CHECK_FALSE(unhealthy.value.overall_healthy);
}

TEST_CASE("decode_health_report: unknown fields are ignored") {
  auto d = decode_health_report(R"({"node_id":"n","load":[1,2,3],"extra":{"a":{"b":1}}})");
  CHECK(d.ok());
}

TEST_CASE("decode_node_registration: the seed's example") {
  auto d = decode_node_registration(seed_register, "127.0.0.9");
  REQUIRE(d.ok());
  auto& r = d.value;
  CHECK(r.node_id == "node-456");
  CHECK(r.hostname == "worker-02");
  CHECK(r.ip_address == "127.100.0.81");
  CHECK(r.port == 5683);
  CHECK(r.reported_status == "online");
  CHECK(r.services == std::vector<std::string>{"docker", "ssh", "mqtt"});
  CHECK(r.drivers == std::vector<std::string>{"gpio", "i2c", "spi"});
  REQUIRE(r.system_info.size() == 3);
  CHECK(r.system_info[0].first == "os");
  CHECK(r.system_info[0].second == scalar::of(std::string{"linux"}));
  CHECK(r.system_info[2].first == "kernel");
  CHECK(r.system_info[2].second == scalar::of(std::string{"5.4.0"}));
}

TEST_CASE("decode_node_registration: defaults") {
  auto d = decode_node_registration(R"({"node_id":"agent-1"})", "127.1.0.7");
  REQUIRE(d.ok());
  CHECK(d.value.ip_address == "127.1.0.7");
  CHECK(d.value.port == 5683);
  CHECK(d.value.hostname.empty());
  CHECK(d.value.services.empty());
  CHECK(d.value.system_info.empty());
  CHECK(d.value.reported_status.empty());

  auto blank_ip = decode_node_registration(R"({"node_id":"a","ip_address":""})", "127.1.0.8");
  REQUIRE(blank_ip.ok());
  CHECK(blank_ip.value.ip_address == "127.1.0.8");
}

TEST_CASE("decode_node_registration: node_id") {
  check_problem(decode_node_registration(R"({"hostname":"h"})", "127.0.0.1").err,
                "missing field: node_id", "node_id");
  check_problem(decode_node_registration(R"({"node_id":"has space"})", "127.0.0.1").err,
                "field node_id must be 1..64 characters of A-Z a-z 0-9 . _ -", "node_id");
  check_fails_on(decode_node_registration(R"({"node_id":""})", "127.0.0.1"), "node_id");
  auto too_long = R"({"node_id":")" + std::string(65, 'n') + "\"}";
  check_fails_on(decode_node_registration(too_long, "127.0.0.1"), "node_id");
  check_problem(decode_node_registration(R"({"node_id":["a"]})", "127.0.0.1").err,
                "field node_id must be a string", "node_id");
}

TEST_CASE("decode_node_registration: ip_address and port") {
  for (const char* ip : {"127.0.0.1", "10.1.2.3", "::1", "fe80::1", "fe80::1%eth0",
                         "2001:db8::5"}) {
    CAPTURE(ip);
    auto d = decode_node_registration(R"({"node_id":"a","ip_address":")" + std::string{ip}
                                        + "\"}",
                                      "127.0.0.1");
    REQUIRE(d.ok());
    CHECK(d.value.ip_address == ip);
  }
  for (const char* ip : {"not-an-ip", "1.2.3", "256.1.1.1", "127.0.0.1:5683", "fe80::1%",
                         "host.example"}) {
    CAPTURE(ip);
    check_fails_on(decode_node_registration(R"({"node_id":"a","ip_address":")"
                                              + std::string{ip} + "\"}",
                                            "127.0.0.1"),
                   "ip_address");
  }
  check_fails_on(decode_node_registration(R"({"node_id":"a","ip_address":7})", "127.0.0.1"),
                 "ip_address");
  // A notification must reach one node: no multicast, broadcast or
  // unspecified address (also not in IPv4-mapped form).
  for (const char* ip : {"224.0.0.1", "239.255.255.250", "255.255.255.255", "0.0.0.0", "::",
                         "ff02::1", "ff05::fd", "::ffff:224.0.1.187", "::ffff:0.0.0.0"}) {
    CAPTURE(ip);
    check_fails_on(decode_node_registration(R"({"node_id":"a","ip_address":")"
                                              + std::string{ip} + "\"}",
                                            "127.0.0.1"),
                   "ip_address");
  }
  for (const char* ip : {"223.255.255.255", "240.0.0.1", "255.255.255.254", "::ffff:10.0.0.1"}) {
    CAPTURE(ip);
    CHECK(decode_node_registration(R"({"node_id":"a","ip_address":")" + std::string{ip} + "\"}",
                                   "127.0.0.1")
            .ok());
  }

  auto port = decode_node_registration(R"({"node_id":"a","port":5690})", "127.0.0.1");
  REQUIRE(port.ok());
  CHECK(port.value.port == 5690);
  for (const char* bad : {"0", "65536", "-1", "\"5683\"", "5683.5", "true"}) {
    CAPTURE(bad);
    auto d = decode_node_registration(R"({"node_id":"a","port":)" + std::string{bad} + "}",
                                      "127.0.0.1");
    check_problem(d.err, "field port must be an integer between 1 and 65535", "port");
  }
}

TEST_CASE("decode_node_registration: lists and system_info") {
  check_fails_on(decode_node_registration(R"({"node_id":"a","services":"ssh"})", "127.0.0.1"),
                 "services");
  check_fails_on(decode_node_registration(R"({"node_id":"a","drivers":[1]})", "127.0.0.1"),
                 "drivers");
  check_fails_on(decode_node_registration(R"({"node_id":"a","system_info":{"cpu":{"n":4}}})",
                                          "127.0.0.1"),
                 "system_info");
  check_fails_on(decode_node_registration(R"({"node_id":"a","system_info":{"l":[1]}})",
                                          "127.0.0.1"),
                 "system_info");
  check_fails_on(decode_node_registration(R"({"node_id":"a","system_info":"linux"})",
                                          "127.0.0.1"),
                 "system_info");
  check_fails_on(decode_node_registration(R"({"node_id":"a","status":1})", "127.0.0.1"),
                 "status");

  auto d = decode_node_registration(
    R"({"node_id":"a","system_info":{"cpus":4,"arm":true,"serial":null,"os":"linux"},)"
    R"("last_seen":12})",
    "127.0.0.1");
  REQUIRE(d.ok());
  auto& si = d.value.system_info;
  REQUIRE(si.size() == 4);
  CHECK(si[0].second == scalar::of(4.0));
  CHECK(si[1].second == scalar::of_bool(true));
  CHECK(si[2].second.kind == scalar::null_v);
  CHECK(si[3].second == scalar::of(std::string{"linux"}));
}

TEST_CASE("attributes and strings round trip") {
  attributes a = {{"os", scalar::of(std::string{"linux \"gnu\"\n\u00e9"})},
                  {"cpus", scalar::of(4.0)},
                  {"load", scalar::of(0.25)},
                  {"arm", scalar::of_bool(true)},
                  {"serial", scalar{}}};
  auto back = decode_attributes(encode_attributes(a));
  REQUIRE(back.ok());
  CHECK(back.value == a);

  auto empty = decode_attributes(encode_attributes({}));
  REQUIRE(empty.ok());
  CHECK(empty.value.empty());

  // NaN is not JSON: it is written as null.
  auto nan = parse_json(encode_attributes({{"x", scalar::of(absent)}}));
  CHECK(nan["x"].IsNull());

  CHECK_FALSE(decode_attributes(R"({"a":{"b":1}})").ok());
  CHECK_FALSE(decode_attributes("[1]").ok());

  std::vector<std::string> v = {"a", "", "with \"quotes\"", "tab\there", "back\\slash"};
  auto vback = decode_strings(encode_strings(v));
  REQUIRE(vback.ok());
  CHECK(vback.value == v);
  CHECK(encode_strings({}) == "[]");
  auto vempty = decode_strings("[]");
  REQUIRE(vempty.ok());
  CHECK(vempty.value.empty());
  CHECK_FALSE(decode_strings(R"(["a",1])").ok());
  CHECK_FALSE(decode_strings(R"({"a":"b"})").ok());
}

TEST_CASE("encode_health_report: fields, nulls, round trip") {
  auto h = decode_health_report(seed_health).value;
  auto text = encode_health_report(h);
  auto doc = parse_json(text);
  CHECK(str(doc, "node_id") == "node-123");
  CHECK(str(doc, "timestamp") == "2025-09-17T10:00:00");
  CHECK(doc["overall_healthy"].GetBool());
  CHECK(doc["cpu_percent"].GetDouble() == doctest::Approx(15.5));
  CHECK(doc["temperature"].GetDouble() == doctest::Approx(42.5));
  CHECK(doc["uptime_seconds"].IsNull());
  CHECK(doc["services_status"]["docker"].IsFalse());
  CHECK(doc["services_status"]["ssh"].IsTrue());
  CHECK(doc["error_messages"].Size() == 1);

  auto back = decode_health_report(text);
  REQUIRE(back.ok());
  CHECK(back.value.cpu_percent == h.cpu_percent);
  CHECK(back.value.services_status == h.services_status);
  CHECK(back.value.error_messages == h.error_messages);

  health_report bare;
  bare.node_id = "n";
  auto bdoc = parse_json(encode_health_report(bare));
  CHECK(bdoc["timestamp"].IsNull());
  for (const char* k : {"cpu_percent", "memory_percent", "disk_percent", "temperature",
                        "uptime_seconds"})
    CHECK_MESSAGE(bdoc[k].IsNull(), k);
  CHECK(bdoc["services_status"].IsObject());
  CHECK(bdoc["error_messages"].IsArray());
}

TEST_CASE("encode_node_registration: fields and round trip") {
  auto r = decode_node_registration(seed_register, "127.0.0.1").value;
  auto text = encode_node_registration(r);
  auto doc = parse_json(text);
  CHECK(str(doc, "node_id") == "node-456");
  CHECK(str(doc, "hostname") == "worker-02");
  CHECK(str(doc, "ip_address") == "127.100.0.81");
  CHECK(doc["port"].GetInt() == 5683);
  CHECK(doc["services"].Size() == 3);
  CHECK(doc["drivers"].Size() == 3);
  CHECK(str(doc["system_info"], "kernel") == "5.4.0");
  CHECK(str(doc, "status") == "online");

  auto back = decode_node_registration(text, "127.9.9.9");
  REQUIRE(back.ok());
  CHECK(back.value.node_id == r.node_id);
  CHECK(back.value.ip_address == r.ip_address);
  CHECK(back.value.services == r.services);
  CHECK(back.value.system_info == r.system_info);
  CHECK(back.value.reported_status == r.reported_status);

  r.reported_status.clear();
  CHECK_FALSE(has(parse_json(encode_node_registration(r)), "status"));
}

TEST_CASE("hostnames with quotes, backslashes and control characters encode to valid JSON") {
  node_record n;
  n.reg.node_id = "n1";
  n.reg.hostname = std::string{"evil\"host\"\n\r\t\\name"} + '\0' + "\x01\x1f end";
  n.reg.system_info = {{"k\"ey", scalar::of(std::string{"v\nal"})}};
  auto doc = parse_json(encode_node(n));
  CHECK(str(doc, "hostname") == n.reg.hostname);
  CHECK(str(doc["system_info"], "k\"ey") == "v\nal");

  auto reg = parse_json(encode_node_registration(n.reg));
  CHECK(str(reg, "hostname") == n.reg.hostname);
  auto nodes = parse_json(encode_nodes({n, n}));
  CHECK(str(nodes["nodes"][1], "hostname") == n.reg.hostname);
}

TEST_CASE("encode_node: with and without health") {
  node_record n;
  n.reg = decode_node_registration(seed_register, "127.0.0.1").value;
  n.status = node_status::stale;
  n.registered_at = 1758103200000;
  n.last_seen = 1758103260000;
  auto doc = parse_json(encode_node(n));
  CHECK(str(doc, "node_id") == "node-456");
  CHECK(str(doc, "status") == "stale");
  CHECK(str(doc, "last_seen") == "2025-09-17T10:01:00Z");
  CHECK(str(doc, "registered_at") == "2025-09-17T10:00:00Z");
  CHECK(doc["port"].GetInt() == 5683);
  CHECK(str(doc["system_info"], "arch") == "arm64");
  CHECK(doc["health"].IsNull());

  n.has_health = true;
  n.health = decode_health_report(seed_health).value;
  n.health.disk_percent = absent;
  n.health_at = 1758103230000;
  n.status = node_status::online;
  auto hdoc = parse_json(encode_node(n));
  CHECK(str(hdoc, "status") == "online");
  auto& health = hdoc["health"];
  REQUIRE(health.IsObject());
  CHECK(health["overall_healthy"].IsTrue());
  CHECK(health["cpu_percent"].GetDouble() == doctest::Approx(15.5));
  CHECK(health["memory_percent"].GetDouble() == doctest::Approx(45.2));
  CHECK(health["disk_percent"].IsNull());
  CHECK(health["temperature"].GetDouble() == doctest::Approx(42.5));
  CHECK(health["error_messages"].Size() == 1);
  CHECK(str(health, "reported_at") == "2025-09-17T10:00:30Z");

  n.status = node_status::offline;
  CHECK(str(parse_json(encode_node(n)), "status") == "offline");
}

TEST_CASE("encode_nodes: 10,000 nodes in one pass") {
  CHECK(parse_json(encode_nodes({}))["nodes"].Size() == 0);

  std::vector<node_record> nodes(10000);
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto& n = nodes[i];
    n.reg.node_id = "node-" + std::to_string(i);
    n.reg.hostname = "worker-" + std::to_string(i);
    n.reg.ip_address = "127.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    n.reg.services = {"docker", "ssh"};
    n.reg.drivers = {"gpio", "i2c"};
    n.reg.system_info = {{"os", scalar::of(std::string{"linux"})},
                         {"arch", scalar::of(std::string{"arm64"})}};
    n.has_health = i % 2 == 0;
    n.health.cpu_percent = 12.5;
    n.health.error_messages = {"none"};
  }
  auto start = std::chrono::steady_clock::now();
  auto text = encode_nodes(nodes);
  auto elapsed = std::chrono::steady_clock::now() - start;
  MESSAGE("encode_nodes(10000): ", text.size(), " bytes in ",
          std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(), " ms");
  CHECK(elapsed < std::chrono::seconds(1));
  auto doc = parse_json(text);
  REQUIRE(doc["nodes"].Size() == 10000);
  CHECK(str(doc["nodes"][9999], "node_id") == "node-9999");
  CHECK(doc["nodes"][1]["health"].IsNull());
  CHECK(doc["nodes"][2]["health"]["cpu_percent"].GetDouble() == 12.5);
}

TEST_CASE("encode_fleet_health") {
  fleet_health h;
  h.status = "degraded";
  h.timestamp = 1758103200000;
  h.total_nodes = 3;
  h.online_nodes = 2;
  h.stale_nodes = 0;
  h.healthy_nodes = 1;
  h.unhealthy_nodes = 1;
  h.offline_nodes = 1;
  h.unhealthy = {{"node-123", {"Service docker is not running"}}};
  h.server.rss_bytes = 12345678;
  h.server.database = "connected";
  h.server.uptime_seconds = 42.5;
  auto doc = parse_json(encode_fleet_health(h));
  CHECK(str(doc, "status") == "degraded");
  CHECK(str(doc, "timestamp") == "2025-09-17T10:00:00Z");
  CHECK(doc["total_nodes"].GetUint() == 3);
  CHECK(doc["online_nodes"].GetUint() == 2);
  CHECK(doc["stale_nodes"].GetUint() == 0);
  CHECK(doc["healthy_nodes"].GetUint() == 1);
  CHECK(doc["unhealthy_nodes"].GetUint() == 1);
  CHECK(doc["offline_nodes"].GetUint() == 1);
  REQUIRE(doc["unhealthy"].Size() == 1);
  CHECK(str(doc["unhealthy"][0], "node_id") == "node-123");
  CHECK(doc["unhealthy"][0]["error_messages"].Size() == 1);
  auto& server = doc["server"];
  CHECK(server["cpu_percent"].IsNull());
  CHECK(server["memory_rss_bytes"].GetUint64() == 12345678);
  CHECK(str(server, "database") == "connected");
  CHECK(server["uptime_seconds"].GetDouble() == 42.5);

  h.server.cpu_percent = 3.25;
  CHECK(parse_json(encode_fleet_health(h))["server"]["cpu_percent"].GetDouble() == 3.25);
}

TEST_CASE("a NUL character anywhere in a body is refused, whatever the field") {
  for (std::string body : {
         std::string(R"({"node_id":"n1","hostname":"a\u0000b","ip_address":"127.0.0.1"})"),
         std::string(R"({"node_id":"n1","ip_address":"127.0.0.1","services":["x\u0000"]})"),
         std::string(R"({"node_id":"n1","ip_address":"127.0.0.1","system_info":{"k\u0000":1}})"),
       }) {
    CAPTURE(body);
    auto r = decode_node_registration(body, "127.0.0.1");
    REQUIRE_FALSE(r.ok());
    CHECK(r.err.error.find("NUL") != std::string::npos);
  }
  auto h = decode_health_report(R"({"node_id":"n1","error_messages":["disk\u0000full"]})");
  REQUIRE_FALSE(h.ok());
  CHECK(h.err.error.find("NUL") != std::string::npos);
  // Other escapes are fine.
  CHECK(decode_node_registration(R"({"node_id":"n1","hostname":"a\u0001b","ip_address":"127.0.0.1"})", "127.0.0.1").ok());
}
