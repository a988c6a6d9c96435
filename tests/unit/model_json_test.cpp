// Unit tests of model/json: decoders (seed bodies and every error class),
// encoders (parsed back and checked field by field) and round trips.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "model/json.hpp"

using namespace coapfleet::model;

namespace {

const std::string empty_body_message =
  "empty body: this request needs a JSON object; send one with coap-client -f - "
  "(echo '{...}' | coap-client -m post -f - URL) or -e '{...}'";

rapidjson::Document parse_json(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  INFO("JSON: ", text);
  REQUIRE_FALSE(d.HasParseError());
  return d;
}

std::string str(const rapidjson::Value& obj, const char* name) {
  REQUIRE(obj.IsObject());
  auto it = obj.FindMember(name);
  REQUIRE_MESSAGE(it != obj.MemberEnd(), "no member ", name);
  REQUIRE(it->value.IsString());
  return {it->value.GetString(), it->value.GetStringLength()};
}

bool has(const rapidjson::Value& obj, const char* name) {
  return obj.FindMember(name) != obj.MemberEnd();
}

/// Expects `err` to be exactly (error, field).
void check_problem(const problem& err, const std::string& error, const std::string& field) {
  CHECK(err.error == error);
  CHECK(err.field == field);
}

/// Expects a decoding failure naming `field` (message checked loosely).
template <class T>
void check_fails_on(const decoded<T>& d, const std::string& field) {
  INFO("error: ", d.err.error);
  CHECK_FALSE(d.ok());
  CHECK(d.err.field == field);
}

bool same_spec(const job_spec& a, const job_spec& b) {
  return a.name == b.name && a.version == b.version && a.package_type == b.package_type
         && a.target_nodes == b.target_nodes && a.packages == b.packages
         && a.artifact == b.artifact && a.target_path == b.target_path && a.mode == b.mode
         && a.script == b.script && a.description == b.description
         && a.timeout_seconds == b.timeout_seconds;
}

// -- the seed's example bodies (000_*.txt), addresses moved to 127.x -----------

const char* seed_health = R"({
    "node_id": "node-123",
    "timestamp": "2025-09-17T10:00:00",
    "overall_healthy": true,
    "cpu_percent": 15.5,
    "memory_percent": 45.2,
    "disk_percent": 30.1,
    "temperature": 42.5,
    "services_status": {
        "systemd": true,
        "network": true,
        "ssh": true,
        "docker": false
    },
    "error_messages": ["Service docker is not running"]
}
)";

const char* seed_health_typo = R"({
  "node id": "worker-03",
  "overall_healthy": true,
  "cpu_percent": 10.5,
  "memory_percent": 35.2,
  "services_status": {"systemd": true, "network": true}
}
)";

const char* seed_register = R"({
    "node_id": "node-456",
    "hostname": "worker-02",
    "ip_address": "127.100.0.81",
    "status": "online",
    "last_seen": "2025-09-17T10:00:00",
    "services": ["docker", "ssh", "mqtt"],
    "drivers": ["gpio", "i2c", "spi"],
    "system_info": {
        "os": "linux",
        "arch": "arm64",
        "kernel": "5.4.0"
    }
}
)";

// The seed's registration workflow: its JSON lacks the final brace.
const char* seed_register_truncated = R"({
  "node_id": "worker-03",
  "hostname": "worker-03",
  "ip_address": "127.100.0.82",
  "status": "online",
  "last_seen": "2025-09-17T10:00:00",
  "services": ["docker", "ssh"],
  "drivers": ["gpio", "i2c"],
  "system_info": {
    "os": "linux",
    "arch": "arm64"
}
)";

const char* seed_create = R"({
    "name": "python-packages-update",
    "version": "2025.09.16",
    "package_type": "pip",
    "target_nodes": ["all"],
    "packages": [
        "aiocoap==0.4.7",
        "aiohttp==3.9.1",
        "pydantic==2.5.0"
    ]
}
)";

const char* seed_create_workflow = R"({
  "name": "python-packages-update",
  "version": "2025.09.16",
  "package_type": "pip",
  "target_nodes": ["all"],
  "packages": ["aiocoap==0.4.7", "aiohttp==3.9.1"]
}
)";

const char* seed_install = R"({
   "action": "install",
   "job_id": "abc123-def456-ghi789"
}
)";

const char* seed_status = R"({
   "action": "status",
   "job_id": "abc123-def456-ghi789"
}
)";

/// A create request for `type` with `extra` members (JSON text without braces).
std::string create_body(const std::string& type, const std::string& extra) {
  return R"({"name":"n","version":"1","package_type":")" + type + "\""
         + (extra.empty() ? "" : "," + extra) + "}";
}

}  // namespace

// == common error classes =======================================================

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

TEST_CASE("valid_node_id") {
  CHECK(valid_node_id("node-123"));
  CHECK(valid_node_id("a"));
  CHECK(valid_node_id("A.b_c-9"));
  CHECK(valid_node_id(std::string(64, 'x')));
  CHECK_FALSE(valid_node_id(""));
  CHECK_FALSE(valid_node_id(std::string(65, 'x')));
  CHECK_FALSE(valid_node_id("node 1"));
  CHECK_FALSE(valid_node_id("node/1"));
  CHECK_FALSE(valid_node_id("nöde"));
}

// == PUT /health ===================================================================

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

// == POST /nodes ===================================================================

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

// == POST /updates =================================================================

TEST_CASE("decode_updates_request: the seed's create examples") {
  auto d = decode_updates_request(seed_create);
  REQUIRE(d.ok());
  CHECK(d.value.action == updates_action::create);
  auto& s = d.value.spec;
  CHECK(s.name == "python-packages-update");
  CHECK(s.version == "2025.09.16");
  CHECK(s.package_type == "pip");
  CHECK(s.target_nodes == std::vector<std::string>{"all"});
  CHECK(s.packages
        == std::vector<std::string>{"aiocoap==0.4.7", "aiohttp==3.9.1", "pydantic==2.5.0"});
  CHECK(s.timeout_seconds == 0);

  auto w = decode_updates_request(seed_create_workflow);
  REQUIRE(w.ok());
  CHECK(w.value.spec.packages.size() == 2);

  auto explicit_create = decode_updates_request(
    R"({"action":"create","name":"n","version":"1","package_type":"apt","packages":["curl"]})");
  REQUIRE(explicit_create.ok());
  CHECK(explicit_create.value.action == updates_action::create);
  CHECK(explicit_create.value.spec.target_nodes == std::vector<std::string>{"all"});
}

TEST_CASE("decode_updates_request: the seed's install and status, and cancel") {
  auto install = decode_updates_request(seed_install);
  REQUIRE(install.ok());
  CHECK(install.value.action == updates_action::install);
  CHECK(install.value.job_id == "abc123-def456-ghi789");

  auto status = decode_updates_request(seed_status);
  REQUIRE(status.ok());
  CHECK(status.value.action == updates_action::status);
  CHECK(status.value.job_id == "abc123-def456-ghi789");

  auto cancel = decode_updates_request(R"({"action":"cancel","job_id":"j1"})");
  REQUIRE(cancel.ok());
  CHECK(cancel.value.action == updates_action::cancel);
  CHECK(cancel.value.job_id == "j1");

  for (const char* action : {"install", "status", "cancel"}) {
    CAPTURE(action);
    auto a = std::string{R"({"action":")"} + action + "\"";
    check_problem(decode_updates_request(a + "}").err, "missing field: job_id", "job_id");
    check_problem(decode_updates_request(a + R"(,"job_id":""})").err,
                  "field job_id must not be empty", "job_id");
    check_problem(decode_updates_request(a + R"(,"job_id":12})").err,
                  "field job_id must be a string", "job_id");
  }
}

TEST_CASE("decode_updates_request: unknown or ill-typed action") {
  check_problem(decode_updates_request(R"({"action":"explode","job_id":"j"})").err,
                "unknown action: explode (expected create, install, status, report, cancel, delete)",
                "action");
  check_problem(decode_updates_request(R"({"action":1})").err, "field action must be a string",
                "action");
}

TEST_CASE("decode_updates_request: create needs name, version, package_type") {
  check_problem(decode_updates_request(R"({"version":"1","package_type":"pip"})").err,
                "missing field: name", "name");
  check_problem(decode_updates_request(R"({"name":"n","package_type":"pip"})").err,
                "missing field: version", "version");
  check_problem(decode_updates_request(R"({"name":"n","version":"1"})").err,
                "missing field: package_type", "package_type");
  check_problem(decode_updates_request(R"({"name":7,"version":"1","package_type":"pip"})").err,
                "field name must be a string", "name");
  check_problem(
    decode_updates_request(R"({"name":"","version":"1","package_type":"script","script":"x"})")
      .err,
    "field name must be 1..128 characters", "name");
  auto long_name = R"({"name":")" + std::string(129, 'n')
                   + R"(","version":"1","package_type":"script","script":"true"})";
  check_fails_on(decode_updates_request(long_name), "name");
  auto long_version = R"({"name":"n","version":")" + std::string(65, '1')
                      + R"(","package_type":"script","script":"true"})";
  check_problem(decode_updates_request(long_version).err, "field version must be 1..64 characters",
                "version");
}

TEST_CASE("decode_updates_request: package_type must be known") {
  check_problem(decode_updates_request(create_body("rpm", R"("packages":["x"])")).err,
                "field package_type must be one of pip, apt, file, script", "package_type");
  check_fails_on(decode_updates_request(create_body("", R"("packages":["x"])")), "package_type");
}

TEST_CASE("decode_updates_request: target_nodes") {
  auto ids = decode_updates_request(create_body("script", R"("script":"true","target_nodes":["node-1","node-2"])"));
  REQUIRE(ids.ok());
  CHECK(ids.value.spec.target_nodes == std::vector<std::string>{"node-1", "node-2"});

  for (const char* bad : {"[]", R"(["all","node-1"])", R"(["bad id"])", R"(["a","a"])", "[1]",
                          R"("all")"}) {
    CAPTURE(bad);
    check_fails_on(
      decode_updates_request(create_body("script", R"("script":"true","target_nodes":)"
                                                     + std::string{bad})),
      "target_nodes");
  }
}

TEST_CASE("decode_updates_request: pip and apt packages") {
  check_fails_on(decode_updates_request(create_body("pip", "")), "packages");
  check_fails_on(decode_updates_request(create_body("pip", R"("packages":[])")), "packages");
  check_fails_on(decode_updates_request(create_body("apt", R"("packages":[])")), "packages");
  check_fails_on(decode_updates_request(create_body("pip", R"("packages":"aiocoap")")),
                 "packages");
  for (const char* bad : {R"("")", R"("   ")", R"("a==1\nb")", R"("-r evil.txt")"}) {
    CAPTURE(bad);
    check_fails_on(decode_updates_request(create_body("pip", R"("packages":[)" + std::string{bad}
                                                               + "]")),
                   "packages");
  }
  auto pip = decode_updates_request(
    create_body("pip", R"("packages":["aiocoap==0.4.7","requests>=2,<3","pkg[extra]"])"));
  CHECK(pip.ok());

  auto apt = decode_updates_request(
    create_body("apt", R"("packages":["curl","libfoo2=1.2-3+deb12u1","g++","0ad"])"));
  CHECK(apt.ok());
  for (const char* bad : {"Curl", "curl; rm -rf /", "foo=", "=1.0", "-curl", "curl bash",
                          "foo=1 2"}) {
    CAPTURE(bad);
    auto d = decode_updates_request(create_body("apt", R"("packages":[")" + std::string{bad}
                                                         + "\"]"));
    check_fails_on(d, "packages");
  }
}

TEST_CASE("decode_updates_request: file jobs") {
  auto ok = decode_updates_request(create_body(
    "file", R"("artifact":"app-1.2.tar.gz","target_path":"/opt/app/app.tar.gz","mode":"0644")"));
  REQUIRE(ok.ok());
  CHECK(ok.value.spec.artifact == "app-1.2.tar.gz");
  CHECK(ok.value.spec.target_path == "/opt/app/app.tar.gz");
  CHECK(ok.value.spec.mode == "0644");
  CHECK(decode_updates_request(
          create_body("file", R"("artifact":"a","target_path":"/etc/a.conf","mode":"755")"))
          .ok());

  check_fails_on(decode_updates_request(create_body("file", R"("target_path":"/opt/a")")),
                 "artifact");
  for (const char* bad : {"../x", "a/b", "..", "a b", ""}) {
    CAPTURE(bad);
    check_fails_on(decode_updates_request(create_body(
                     "file", R"("target_path":"/opt/a","artifact":")" + std::string{bad} + "\"")),
                   "artifact");
  }
  check_fails_on(decode_updates_request(create_body("file", R"("artifact":"a")")), "target_path");
  for (const char* bad : {"relative/x", "/opt/../etc/passwd", "/opt/x/..", "/..", "/", "/opt/",
                          "x"}) {
    CAPTURE(bad);
    auto d = decode_updates_request(create_body(
      "file", R"("artifact":"a","target_path":")" + std::string{bad} + "\""));
    check_fails_on(d, "target_path");
  }
  check_problem(
    decode_updates_request(create_body("file", R"("artifact":"a","target_path":"/opt/../x")"))
      .err,
    "field target_path must be an absolute file path without .. components", "target_path");
  CHECK(decode_updates_request(create_body("file", R"("artifact":"a","target_path":"/opt/..x/.y")"))
          .ok());
  for (const char* bad : {"999", "12345", "64", "rw-r--r--", "0o644"}) {
    CAPTURE(bad);
    check_fails_on(decode_updates_request(create_body(
                     "file", R"("artifact":"a","target_path":"/a","mode":")" + std::string{bad}
                               + "\"")),
                   "mode");
  }
}

TEST_CASE("decode_updates_request: script jobs and the optional fields") {
  auto d = decode_updates_request(create_body(
    "script", R"("script":"echo hi > out","description":"say hi","timeout_seconds":60)"));
  REQUIRE(d.ok());
  CHECK(d.value.spec.script == "echo hi > out");
  CHECK(d.value.spec.description == "say hi");
  CHECK(d.value.spec.timeout_seconds == 60);

  check_fails_on(decode_updates_request(create_body("script", "")), "script");
  check_fails_on(decode_updates_request(create_body("script", R"("script":"  ")")), "script");
  check_fails_on(decode_updates_request(create_body("script", R"("script":["ls"])")), "script");
  for (const char* bad : {"0", "86401", "1.5", "\"60\"", "-5"}) {
    CAPTURE(bad);
    check_problem(decode_updates_request(create_body("script", R"("script":"x","timeout_seconds":)"
                                                                 + std::string{bad}))
                    .err,
                  "field timeout_seconds must be an integer between 1 and 86400",
                  "timeout_seconds");
  }
  check_fails_on(decode_updates_request(create_body("script", R"("script":"x","description":1)")),
                 "description");
}

TEST_CASE("decode_updates_request: report") {
  auto d = decode_updates_request(
    R"({"action":"report","job_id":"j1","node_id":"node-1","status":"downloading",)"
    R"("progress":40,"result":0,"error_message":null})");
  REQUIRE(d.ok());
  CHECK(d.value.action == updates_action::report);
  auto& r = d.value.report;
  CHECK(r.job_id == "j1");
  CHECK(r.node_id == "node-1");
  CHECK(r.state == node_update_state::downloading);
  CHECK(r.progress == 40);
  CHECK(r.result == 0);
  CHECK(r.error_message.empty());

  auto minimal =
    decode_updates_request(R"({"action":"report","job_id":"j1","node_id":"n","status":"failed",)"
                           R"("result":8,"error_message":"E: Unable to locate package"})");
  REQUIRE(minimal.ok());
  CHECK(minimal.value.report.progress == -1);
  CHECK(minimal.value.report.result == 8);
  CHECK(minimal.value.report.error_message == "E: Unable to locate package");

  std::string base = R"({"action":"report","job_id":"j1","node_id":"n")";
  check_problem(decode_updates_request(base + "}").err, "missing field: status", "status");
  check_problem(decode_updates_request(base + R"(,"status":"in_progress"})").err,
                "field status must be one of pending, notified, downloading, downloaded, "
                "installing, succeeded, failed, timed_out, cancelled, skipped",
                "status");
  check_fails_on(decode_updates_request(base + R"(,"status":3})"), "status");
  check_fails_on(decode_updates_request(base + R"(,"status":"installing","progress":101})"),
                 "progress");
  check_fails_on(decode_updates_request(base + R"(,"status":"installing","progress":-1})"),
                 "progress");
  check_fails_on(decode_updates_request(base + R"(,"status":"failed","result":11})"), "result");
  check_fails_on(decode_updates_request(base + R"(,"status":"failed","error_message":5})"),
                 "error_message");
  check_problem(
    decode_updates_request(R"({"action":"report","job_id":"j1","status":"failed"})").err,
    "missing field: node_id", "node_id");
  check_fails_on(
    decode_updates_request(R"({"action":"report","node_id":"n","status":"failed"})"), "job_id");
}

// == POST /system ==================================================================

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

// == agent notification and persistence round trips =================================

TEST_CASE("update_notification round trip") {
  update_notification n;
  n.job_id = "job-42";
  n.node_id = "node-7";
  n.server = "coap://127.0.0.1:5683";
  n.spec.name = "config";
  n.spec.version = "3";
  n.spec.package_type = "file";
  n.spec.target_nodes = {"node-7", "node-8"};
  n.spec.artifact = "app.conf";
  n.spec.target_path = "/etc/app/app.conf";
  n.spec.mode = "0640";
  n.spec.description = "a \"quoted\"\nline";
  n.spec.timeout_seconds = 120;

  auto text = encode_update_notification(n);
  auto doc = parse_json(text);
  CHECK(str(doc, "job_id") == "job-42");
  CHECK(str(doc, "node_id") == "node-7");
  CHECK(str(doc, "package_type") == "file");
  CHECK(str(doc, "server") == "coap://127.0.0.1:5683");
  CHECK(doc["packages"].IsArray());

  auto back = decode_update_notification(text);
  REQUIRE(back.ok());
  CHECK(back.value.job_id == n.job_id);
  CHECK(back.value.node_id == n.node_id);
  CHECK(back.value.server == n.server);
  CHECK(same_spec(back.value.spec, n.spec));

  // pip, without server nor targets.
  update_notification p;
  p.job_id = "j";
  p.node_id = "n";
  p.spec.name = "python-packages-update";
  p.spec.version = "2025.09.16";
  p.spec.package_type = "pip";
  p.spec.packages = {"aiocoap==0.4.7", "aiohttp==3.9.1"};
  auto ptext = encode_update_notification(p);
  CHECK_FALSE(has(parse_json(ptext), "server"));
  auto pback = decode_update_notification(ptext);
  REQUIRE(pback.ok());
  CHECK(pback.value.server.empty());
  CHECK(same_spec(pback.value.spec, p.spec));
}

TEST_CASE("decode_update_notification validates what the agent would run") {
  check_fails_on(decode_update_notification(
                   R"({"job_id":"j","node_id":"n","name":"x","version":"1","package_type":"apt",)"
                   R"("packages":["bad name"]})"),
                 "packages");
  check_fails_on(decode_update_notification(
                   R"({"job_id":"j","node_id":"n","name":"x","version":"1","package_type":"file",)"
                   R"("artifact":"a","target_path":"../etc/passwd"})"),
                 "target_path");
  check_fails_on(decode_update_notification(R"({"node_id":"n","name":"x","version":"1",)"
                                            R"("package_type":"script","script":"true"})"),
                 "job_id");
  check_fails_on(decode_update_notification(R"({"job_id":"j","name":"x","version":"1",)"
                                            R"("package_type":"script","script":"true"})"),
                 "node_id");
}

TEST_CASE("job_spec round trip") {
  job_spec s;
  s.name = "n";
  s.version = "1.0";
  s.package_type = "script";
  s.target_nodes = {"all"};
  s.script = "printf 'a\\tb\\n' > \"$HOME/x\"";
  s.timeout_seconds = 30;
  auto back = decode_job_spec(encode_job_spec(s));
  REQUIRE(back.ok());
  CHECK(same_spec(back.value, s));

  job_spec empty;
  auto eback = decode_job_spec(encode_job_spec(empty));
  REQUIRE(eback.ok());
  CHECK(same_spec(eback.value, empty));

  check_fails_on(decode_job_spec(R"({"packages":"x"})"), "packages");
  check_fails_on(decode_job_spec(R"({"timeout_seconds":-1})"), "timeout_seconds");
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

// == encoders =======================================================================

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

namespace {

job_record sample_job() {
  job_record j;
  j.job_id = "abc123-def456-ghi789";
  j.spec = decode_updates_request(seed_create).value.spec;
  j.status = job_status::in_progress;
  j.created_at = 1758103200000;
  j.updated_at = 1758103210000;
  node_job_state a;
  a.node_id = "node-123";
  a.state = node_update_state::pending;
  node_job_state b;
  b.node_id = "node-456";
  b.state = node_update_state::downloading;
  b.progress = 40;
  b.updated_at = 1758103205000;
  node_job_state c;
  c.node_id = "node-789";
  c.state = node_update_state::failed;
  c.result = 8;
  c.error_message = "pip exited with 1";
  j.nodes = {a, b, c};
  return j;
}

}  // namespace

TEST_CASE("encode_job_created and encode_job_triggered") {
  auto j = sample_job();
  auto created = parse_json(encode_job_created(j));
  CHECK(str(created, "job_id") == "abc123-def456-ghi789");
  CHECK(str(created, "status") == "created");
  CHECK(str(created, "message") == "Update request created successfully");

  auto trig = parse_json(encode_job_triggered(j));
  CHECK(trig["success"].IsTrue());
  CHECK(str(trig, "message") == "Update job abc123-def456-ghi789 triggered successfully");
  CHECK(str(trig, "job_id") == "abc123-def456-ghi789");
  CHECK(str(trig, "status") == "in_progress");
  CHECK(trig["targets"].GetUint() == 3);
  CHECK(trig.HasMember("skipped"));
  CHECK_FALSE(trig.HasMember("target_nodes"));  // stays one datagram for any fleet size
}

TEST_CASE("encode_job_status") {
  auto j = sample_job();
  auto doc = parse_json(encode_job_status(j));
  CHECK(str(doc, "job_id") == j.job_id);
  CHECK(str(doc, "name") == "python-packages-update");
  CHECK(str(doc, "version") == "2025.09.16");
  CHECK(str(doc, "package_type") == "pip");
  CHECK(str(doc, "status") == "in_progress");
  CHECK(str(doc["node_statuses"], "node-123") == "pending");
  CHECK(str(doc["node_statuses"], "node-456") == "downloading");
  CHECK(str(doc["node_statuses"], "node-789") == "failed");
  CHECK(doc["error_message"].IsNull());
  auto& counts = doc["counts"];
  CHECK(counts["total"].GetUint() == 3);
  CHECK(counts["pending"].GetUint() == 1);
  CHECK(counts["downloading"].GetUint() == 1);
  CHECK(counts["failed"].GetUint() == 1);
  CHECK(counts["succeeded"].GetUint() == 0);
  for (const char* s : {"notified", "downloaded", "installing", "timed_out", "cancelled",
                        "skipped"})
    CHECK_MESSAGE(counts[s].GetUint() == 0, s);
  CHECK(doc["progress"].GetInt() == (0 + 40 + 100) / 3);
  auto& nodes = doc["nodes"];
  REQUIRE(nodes.Size() == 3);
  CHECK(str(nodes[0], "node_id") == "node-123");
  CHECK(nodes[0]["progress"].IsNull());
  CHECK(nodes[0]["error_message"].IsNull());
  CHECK(nodes[1]["progress"].GetInt() == 40);
  CHECK(str(nodes[1], "updated_at") == "2025-09-17T10:00:05Z");
  CHECK(str(nodes[2], "status") == "failed");
  CHECK(nodes[2]["result"].GetInt() == 8);
  CHECK(str(nodes[2], "error_message") == "pip exited with 1");
  CHECK(str(doc, "created_at") == "2025-09-17T10:00:00Z");
  CHECK(str(doc, "updated_at") == "2025-09-17T10:00:10Z");

  j.error_message = "no target is registered";
  CHECK(str(parse_json(encode_job_status(j)), "error_message") == "no target is registered");
}

TEST_CASE("encode_job_summary and encode_jobs") {
  auto j = sample_job();
  auto doc = parse_json(encode_job_summary(j));
  CHECK(str(doc, "job_id") == j.job_id);
  CHECK(str(doc, "name") == "python-packages-update");
  CHECK(str(doc, "package_type") == "pip");
  CHECK(doc["target_nodes"].Size() == 1);
  CHECK(doc["packages"].Size() == 3);
  CHECK_FALSE(has(doc, "artifact"));
  CHECK_FALSE(has(doc, "target_path"));
  CHECK_FALSE(has(doc, "script"));
  CHECK(str(doc, "status") == "in_progress");
  CHECK(str(doc, "created_at") == "2025-09-17T10:00:00Z");
  CHECK(doc["counts"]["total"].GetUint() == 3);
  CHECK(doc["progress"].IsInt());

  job_record f;
  f.job_id = "f1";
  f.spec.package_type = "file";
  f.spec.artifact = "a.bin";
  f.spec.target_path = "/opt/a.bin";
  auto fdoc = parse_json(encode_job_summary(f));
  CHECK(str(fdoc, "artifact") == "a.bin");
  CHECK(str(fdoc, "target_path") == "/opt/a.bin");
  CHECK(str(fdoc, "status") == "created");
  CHECK(fdoc["counts"]["total"].GetUint() == 0);
  CHECK(fdoc["progress"].GetInt() == 0);

  auto jobs = parse_json(encode_jobs({j, f}));
  REQUIRE(jobs["updates"].Size() == 2);
  CHECK(str(jobs["updates"][1], "job_id") == "f1");
  CHECK(parse_json(encode_jobs({}))["updates"].Size() == 0);
}

TEST_CASE("encode_update_report and its round trip through decode_updates_request") {
  update_report r;
  r.job_id = "j1";
  r.node_id = "node-1";
  r.state = node_update_state::downloaded;
  auto doc = parse_json(encode_update_report(r));
  CHECK(str(doc, "action") == "report");
  CHECK(str(doc, "status") == "downloaded");
  CHECK_FALSE(has(doc, "progress"));
  CHECK_FALSE(has(doc, "result"));
  CHECK_FALSE(has(doc, "error_message"));

  r.state = node_update_state::failed;
  r.progress = 60;
  r.result = 5;
  r.error_message = "sha256 mismatch";
  auto text = encode_update_report(r);
  auto full = parse_json(text);
  CHECK(full["progress"].GetInt() == 60);
  CHECK(full["result"].GetInt() == 5);
  CHECK(str(full, "error_message") == "sha256 mismatch");

  auto back = decode_updates_request(text);
  REQUIRE(back.ok());
  CHECK(back.value.action == updates_action::report);
  CHECK(back.value.report.job_id == r.job_id);
  CHECK(back.value.report.node_id == r.node_id);
  CHECK(back.value.report.state == r.state);
  CHECK(back.value.report.progress == r.progress);
  CHECK(back.value.report.result == r.result);
  CHECK(back.value.report.error_message == r.error_message);
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
