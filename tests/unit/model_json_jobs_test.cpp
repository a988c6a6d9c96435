// Unit tests of model/json for update jobs (json_decode_jobs.cpp,
// json_encode_jobs.cpp): POST /updates bodies, agent notifications and
// reports, job specs, job status and listings.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "model/json.hpp"
#include "model_json_helpers.hpp"

using namespace coapfleet::model;
using namespace model_json_test;

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
                "unknown action: explode (expected create, install, status, report, pause, resume, cancel, retry, close, delete)",
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
                "installing, succeeded, failed, timed_out, cancelled, skipped, rolled_back",
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

TEST_CASE("update_notification carries the ids only; node_job carries the spec") {
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
  n.spec.artifact_sha256 = std::string(64, 'c');
  n.spec.signature = std::string(128, 'e');

  auto text = encode_update_notification(n);
  auto doc = parse_json(text);
  CHECK(str(doc, "job_id") == "job-42");
  CHECK(str(doc, "node_id") == "node-7");
  CHECK(str(doc, "server") == "coap://127.0.0.1:5683");
  for (auto* member : {"name", "version", "package_type", "packages", "artifact", "target_path",
                       "script", "artifact_sha256", "signature"}) {
    CAPTURE(member);
    CHECK_FALSE(has(doc, member));
  }
  auto back = decode_update_notification(text);
  REQUIRE(back.ok());
  CHECK(back.value.job_id == n.job_id);
  CHECK(back.value.node_id == n.node_id);
  CHECK(back.value.server == n.server);
  CHECK(same_spec(back.value.spec, job_spec{}));

  auto full = encode_node_job(n);
  auto fdoc = parse_json(full);
  CHECK(str(fdoc, "package_type") == "file");
  CHECK(str(fdoc, "signature") == n.spec.signature);
  CHECK(str(fdoc, "artifact_sha256") == n.spec.artifact_sha256);
  auto fback = decode_node_job(full);
  REQUIRE(fback.ok());
  CHECK(fback.value.job_id == n.job_id);
  CHECK(fback.value.node_id == n.node_id);
  CHECK(fback.value.server == n.server);
  CHECK(same_spec(fback.value.spec, n.spec));

  // pip, without server nor targets.
  update_notification p;
  p.job_id = "j";
  p.node_id = "n";
  p.spec.name = "python-packages-update";
  p.spec.version = "2025.09.16";
  p.spec.package_type = "pip";
  p.spec.packages = {"aiocoap==0.4.7", "aiohttp==3.9.1"};
  auto ptext = encode_node_job(p);
  CHECK_FALSE(has(parse_json(ptext), "server"));
  CHECK_FALSE(has(parse_json(ptext), "signature"));
  auto pback = decode_node_job(ptext);
  REQUIRE(pback.ok());
  CHECK(pback.value.server.empty());
  CHECK(same_spec(pback.value.spec, p.spec));
}

TEST_CASE("a create request may carry a signature and an artifact_sha256 pin") {
  auto sig = std::string(128, 'a');
  auto sha = std::string(64, 'b');
  auto d = decode_updates_request(
    R"({"name":"n","version":"1","package_type":"file","artifact":"a.bin",)"
    R"("target_path":"/opt/a.bin","artifact_sha256":")" + sha + R"(","signature":")" + sig
    + R"(","artifact_size":5})");
  REQUIRE(d.ok());
  CHECK(d.value.spec.signature == sig);
  CHECK(d.value.spec.artifact_sha256 == sha);
  CHECK(d.value.spec.artifact_size == 0);  // the server's, never the operator's
  check_fails_on(decode_updates_request(R"({"name":"n","version":"1","package_type":"script",)"
                                        R"("script":"true","signature":"nothex"})"),
                 "signature");
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

TEST_CASE("a cancel and a retry's attempt travel in notifications, node jobs and reports") {
  update_notification n;
  n.job_id = "job-9";
  n.node_id = "node-1";
  CHECK_FALSE(has(parse_json(encode_update_notification(n)), "action"));
  CHECK_FALSE(has(parse_json(encode_update_notification(n)), "attempt"));
  n.cancel = true;
  n.force = true;
  n.attempt = 3;
  auto text = encode_update_notification(n);
  auto doc = parse_json(text);
  CHECK(str(doc, "action") == "cancel");
  CHECK(doc["force"].GetBool());
  CHECK(doc["attempt"].GetInt() == 3);
  auto back = decode_update_notification(text);
  REQUIRE(back.ok());
  CHECK(back.value.cancel);
  CHECK(back.value.force);
  CHECK(back.value.attempt == 3);
  auto bad = decode_update_notification(R"({"action":"explode","job_id":"j","node_id":"n"})");
  CHECK(bad.err.field == "action");
  auto zero = decode_update_notification(R"({"job_id":"j","node_id":"n","attempt":0})");
  CHECK(zero.err.field == "attempt");

  n.cancel = false;
  n.spec.name = "s";
  n.spec.version = "1";
  n.spec.package_type = "script";
  n.spec.script = "true";
  n.spec.node_timeout_seconds = 90;
  auto job = decode_node_job(encode_node_job(n));
  REQUIRE(job.ok());
  CHECK(job.value.attempt == 3);
  CHECK(job.value.spec.node_timeout_seconds == 90);
  CHECK(run_key("job-9", 1) == "job-9");
  CHECK(run_key("job-9", 3) == "job-9#3");

  update_report r;
  r.job_id = "job-9";
  r.node_id = "node-1";
  r.state = node_update_state::cancelled;
  CHECK_FALSE(has(parse_json(encode_update_report(r)), "attempt"));
  r.attempt = 3;
  auto rep = decode_updates_request(encode_update_report(r));
  REQUIRE(rep.ok());
  CHECK(rep.value.report.attempt == 3);
}

TEST_CASE("decode_updates_request: retry, and cancel with force") {
  auto retry = decode_updates_request(R"({"action":"retry","job_id":"j"})");
  REQUIRE(retry.ok());
  CHECK(retry.value.action == updates_action::retry);
  auto cancel = decode_updates_request(R"({"action":"cancel","job_id":"j","force":true})");
  REQUIRE(cancel.ok());
  CHECK(cancel.value.force);
  auto plain = decode_updates_request(R"({"action":"cancel","job_id":"j"})");
  REQUIRE(plain.ok());
  CHECK_FALSE(plain.value.force);
  auto bad = decode_updates_request(R"({"action":"cancel","job_id":"j","force":"yes"})");
  CHECK(bad.err.field == "force");
}
