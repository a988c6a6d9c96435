// Unit tests of model/json's validation (json_validate.cpp): node ids and
// what a job may ask an agent to run (package types, targets, packages, file
// paths, scripts, timeouts), on the server's and on the agent's side.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "model/json.hpp"
#include "model_json_helpers.hpp"

using namespace coapfleet::model;
using namespace model_json_test;

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
  for (const char* bad : {"../x", "a/b", "..", "a b", "", ".meta-fw.bin.json", ".tmp-x", "-x"}) {
    CAPTURE(bad);
    check_fails_on(decode_updates_request(create_body(
                     "file", R"("target_path":"/opt/a","artifact":")" + std::string{bad} + "\"")),
                   "artifact");
  }
  CHECK(decode_updates_request(
          create_body("file", R"("artifact":"fw+1.0_x-y.bin","target_path":"/opt/fw.bin")"))
          .ok());
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

TEST_CASE("decode_node_job validates what the agent would run") {
  check_fails_on(decode_node_job(
                   R"({"job_id":"j","node_id":"n","name":"x","version":"1","package_type":"apt",)"
                   R"("packages":["bad name"]})"),
                 "packages");
  check_fails_on(decode_node_job(
                   R"({"job_id":"j","node_id":"n","name":"x","version":"1","package_type":"file",)"
                   R"("artifact":"a","target_path":"../etc/passwd"})"),
                 "target_path");
  check_fails_on(decode_node_job(R"({"node_id":"n","name":"x","version":"1",)"
                                 R"("package_type":"script","script":"true"})"),
                 "job_id");
  check_fails_on(decode_node_job(R"({"job_id":"j","name":"x","version":"1",)"
                                 R"("package_type":"script","script":"true"})"),
                 "node_id");
  check_fails_on(decode_node_job(R"({"job_id":"j","node_id":"n","name":"x","version":"1",)"
                                 R"("package_type":"script","script":"true","signature":"abc"})"),
                 "signature");
  check_fails_on(decode_node_job(R"({"job_id":"j","node_id":"n","name":"x","version":"1",)"
                                 R"("package_type":"file","artifact":"a","target_path":"/a",)"
                                 R"("artifact_sha256":"XYZ"})"),
                 "artifact_sha256");
}

TEST_CASE("decode_update_notification reads the ids and nothing else") {
  // A body with a whole spec, as notifications once carried (or an attacker
  // sends): the spec is not read.
  auto d = decode_update_notification(
    R"({"job_id":"j-1","node_id":"n","name":"x","version":"1","package_type":"script",)"
    R"("script":"id > pwned","server":"coap://127.0.0.1:5683"})");
  REQUIRE(d.ok());
  CHECK(d.value.job_id == "j-1");
  CHECK(d.value.node_id == "n");
  CHECK(d.value.server == "coap://127.0.0.1:5683");
  CHECK(d.value.spec.script.empty());
  CHECK(d.value.spec.package_type.empty());
  CHECK(d.value.spec.name.empty());
  check_fails_on(decode_update_notification(R"({"node_id":"n"})"), "job_id");
  check_fails_on(decode_update_notification(R"({"job_id":"j"})"), "node_id");
  // The job id becomes a path segment of the agent's request to its server.
  check_fails_on(decode_update_notification(R"({"job_id":"../keys","node_id":"n"})"), "job_id");
  check_fails_on(decode_update_notification(R"({"job_id":"a/b","node_id":"n"})"), "job_id");
}

TEST_CASE("validate_job_spec: artifact_sha256 and signature are hex of the right length") {
  job_spec s;
  s.name = "n";
  s.version = "1";
  s.package_type = "script";
  s.script = "true";
  s.target_nodes = {"all"};
  CHECK(validate_job_spec(s).empty());
  s.signature = std::string(128, 'a');
  CHECK(validate_job_spec(s).empty());
  s.signature = std::string(128, 'A');
  CHECK(validate_job_spec(s).field == "signature");
  s.signature = std::string(126, 'a');
  CHECK(validate_job_spec(s).field == "signature");
  s.signature.clear();
  s.artifact_sha256 = std::string(64, '0');
  CHECK(validate_job_spec(s).empty());
  s.artifact_sha256 = std::string(63, '0');
  CHECK(validate_job_spec(s).field == "artifact_sha256");
}

TEST_CASE("valid_artifact_name: 1..128 of [A-Za-z0-9._+-], never starting with . or -") {
  for (std::string good : std::vector<std::string>{"a", "fw.bin", "FW-1.0+build_7.tar.gz", "0", "a.", "a-", "x.tmp.abcdef",
                           "meta-x.json", "+x", std::string(128, 'z')}) {
    CAPTURE(good);
    CHECK(valid_artifact_name(good));
  }
  for (std::string bad : std::vector<std::string>{"", ".", "..", ".meta-fw.bin.json", ".tmp-x", ".store", ".hidden",
                          "-rf", "--x", "a b", "a/b", "../x", "a\\b", "a:b", "a*",
                          "caf\xc3\xa9", std::string("a\0b", 3), std::string(129, 'z')}) {
    CAPTURE(bad);
    CHECK_FALSE(valid_artifact_name(bad));
  }
  CHECK(std::string(artifact_name_rule).find("A-Z a-z 0-9 . _ + -") != std::string::npos);
}
