// Helpers and the seed's example bodies shared by the model/json unit tests
// (model_json_*_test.cpp).
#pragma once

#include <doctest/doctest.h>

#include <string>

#include <rapidjson/document.h>

#include "model/json.hpp"

namespace model_json_test {

using namespace coapfleet::model;

inline rapidjson::Document parse_json(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  INFO("JSON: ", text);
  REQUIRE_FALSE(d.HasParseError());
  return d;
}

inline std::string str(const rapidjson::Value& obj, const char* name) {
  REQUIRE(obj.IsObject());
  auto it = obj.FindMember(name);
  REQUIRE_MESSAGE(it != obj.MemberEnd(), "no member ", name);
  REQUIRE(it->value.IsString());
  return {it->value.GetString(), it->value.GetStringLength()};
}

inline bool has(const rapidjson::Value& obj, const char* name) {
  return obj.FindMember(name) != obj.MemberEnd();
}

/// Expects `err` to be exactly (error, field).
inline void check_problem(const problem& err, const std::string& error, const std::string& field) {
  CHECK(err.error == error);
  CHECK(err.field == field);
}

/// Expects a decoding failure naming `field` (message checked loosely).
template <class T>
inline void check_fails_on(const decoded<T>& d, const std::string& field) {
  INFO("error: ", d.err.error);
  CHECK_FALSE(d.ok());
  CHECK(d.err.field == field);
}

inline bool same_spec(const job_spec& a, const job_spec& b) {
  return a.name == b.name && a.version == b.version && a.package_type == b.package_type
         && a.target_nodes == b.target_nodes && a.packages == b.packages
         && a.artifact == b.artifact && a.target_path == b.target_path && a.mode == b.mode
         && a.script == b.script && a.description == b.description
         && a.timeout_seconds == b.timeout_seconds && a.artifact_sha256 == b.artifact_sha256
         && a.signature == b.signature;
}

// -- the seed's example bodies (000_*.txt), addresses moved to 127.x -----------

inline const char* const seed_health = R"({
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

inline const char* const seed_health_typo = R"({
  "node id": "worker-03",
  "overall_healthy": true,
  "cpu_percent": 10.5,
  "memory_percent": 35.2,
  "services_status": {"systemd": true, "network": true}
}
)";

inline const char* const seed_register = R"({
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
inline const char* const seed_register_truncated = R"({
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

inline const char* const seed_create = R"({
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

inline const char* const seed_create_workflow = R"({
  "name": "python-packages-update",
  "version": "2025.09.16",
  "package_type": "pip",
  "target_nodes": ["all"],
  "packages": ["aiocoap==0.4.7", "aiohttp==3.9.1"]
}
)";

inline const char* const seed_install = R"({
   "action": "install",
   "job_id": "abc123-def456-ghi789"
}
)";

inline const char* const seed_status = R"({
   "action": "status",
   "job_id": "abc123-def456-ghi789"
}
)";

/// A create request for `type` with `extra` members (JSON text without braces).
inline std::string create_body(const std::string& type, const std::string& extra) {
  return R"({"name":"n","version":"1","package_type":")" + type + "\""
         + (extra.empty() ? "" : "," + extra) + "}";
}

}  // namespace model_json_test
