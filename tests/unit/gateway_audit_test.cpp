// The gateway's audit hook with a mock persistence actor that keeps every
// audit record it is given: each operator action (jobs, artifacts, system
// actions, keys, an operator's registration) leaves one record with the
// sender's identity, role, address and the outcome, written durably before
// the answer leaves; refused changes leave one too (best effort); reads and
// a node's own registration leave none; key material never appears. And
// GET /audit pages the transport cannot serve (access, cut to one datagram).
#include "gateway_fixture.hpp"

using namespace coapfleet;
using namespace coapfleet::actor_test;

namespace {

model::job_spec spec(const std::string& name = "fw") {
  model::job_spec s;
  s.name = name;
  s.version = "1";
  s.package_type = "script";
  s.script = "true";
  return s;
}

model::job_record job(const std::string& id) {
  model::job_record j;
  j.job_id = id;
  j.spec = spec();
  j.created_at = fake_epoch;
  return j;
}

const peer op{"127.0.0.9", 41000, "alice", model::role::operator_, true};
const peer trusted{"127.0.0.1", 42000, "", model::role::trusted, false};
const peer outsider{"127.0.0.2", 43000, "", model::role::reader, false};  // plain, untrusted
const peer reader{"127.0.0.5", 44000, "dashboard", model::role::reader, true};

model::key_request key_add(const std::string& id) {
  model::key_request q;
  q.action = model::key_action::add;
  q.id = id;
  q.r = model::role::node;
  return q;
}

}  // namespace

TEST_CASE_FIXTURE(gateway_fixture, "audit: an operator's job create is recorded durably with identity and outcome") {
  send(atom::create::value, uint64_t{1}, spec(), op);
  check_json(reply_to(1), 201);
  REQUIRE(database->audited.size() == 1);
  auto& a = database->audited[0];
  CHECK(database->durable[0]);
  CHECK(a.action == "job.create");
  CHECK(a.target == "job-1");
  CHECK(a.identity == "alice");
  CHECK(a.r == model::role::operator_);
  CHECK(a.secure);
  CHECK(a.address == "127.0.0.9");
  CHECK(a.port == 41000);
  CHECK(a.outcome == "2.01");
  CHECK(a.detail.empty());
  CHECK(a.at > 0);
}

TEST_CASE_FIXTURE(gateway_fixture, "audit: the answer waits until the record is durable") {
  database->writes = verdict::never();
  send(atom::create::value, uint64_t{2}, spec(), op);
  CHECK(wire->answers_to(2) == 0);
  REQUIRE(database->held.size() == 1);
  // A write that never commits: the answer goes when the gateway gives up
  // on it (the action itself happened), and says nothing of the audit.
  advance(request_timeout);
  check_json(reply_to(2), 201);
}

TEST_CASE_FIXTURE(gateway_fixture, "audit: a record that cannot be stored does not lose the answer") {
  database->writes = verdict::fail(make_api_error(api_errc::internal, "database write failed"));
  send(atom::create::value, uint64_t{3}, spec(), op);
  check_json(reply_to(3), 201);
}

TEST_CASE_FIXTURE(gateway_fixture, "audit: install, cancel and delete of a job by a trusted plain source") {
  jobs_do->jobs = {job("job-7")};
  send(atom::install::value, uint64_t{4}, std::string{"job-7"}, trusted);
  send(atom::cancel::value, uint64_t{5}, std::string{"job-7"}, false, trusted);
  send(atom::remove::value, uint64_t{6}, std::string{"job-7"}, trusted);
  check_json(reply_to(5), 204);
  REQUIRE(database->audited.size() == 3);
  CHECK(database->audited[0].action == "job.install");
  CHECK(database->audited[1].action == "job.cancel");
  CHECK(database->audited[1].outcome == "2.04");
  CHECK(database->audited[2].action == "job.delete");
  CHECK(database->audited[2].outcome == "2.02");
  for (auto& a : database->audited) {
    CHECK(a.target == "job-7");
    CHECK(a.identity.empty());
    CHECK(a.r == model::role::trusted);
    CHECK_FALSE(a.secure);
    CHECK(a.address == "127.0.0.1");
  }
}

TEST_CASE_FIXTURE(gateway_fixture, "audit: a failed action is recorded with its code and reason") {
  send(atom::cancel::value, uint64_t{7}, std::string{"job-404"}, false, op);
  check_json(reply_to(7), 404);
  REQUIRE(database->audited.size() == 1);
  CHECK(database->audited[0].action == "job.cancel");
  CHECK(database->audited[0].target == "job-404");
  CHECK(database->audited[0].outcome == "4.04");
  CHECK(database->audited[0].detail == "update job not found");
}

TEST_CASE_FIXTURE(gateway_fixture, "audit: a refused plain shutdown from an untrusted source is recorded as 4.01") {
  send(atom::action::value, uint64_t{8}, model::system_action::shutdown, outsider);
  auto r = reply_to(8);
  check_json(r, 401);
  CHECK(system_does->actions.empty());
  REQUIRE(database->audited.size() == 1);
  auto& a = database->audited[0];
  CHECK_FALSE(database->durable[0]);  // best effort
  CHECK(a.action == "system.shutdown");
  CHECK(a.outcome == "4.01");
  CHECK(a.identity.empty());
  CHECK(a.r == model::role::reader);
  CHECK(a.address == "127.0.0.2");
  CHECK(a.port == 43000);
  CHECK(a.detail.find("authentication required") == 0);
}

TEST_CASE_FIXTURE(gateway_fixture, "audit: a reader's job create is recorded as 4.03") {
  send(atom::create::value, uint64_t{9}, spec("tools"), reader);
  check_json(reply_to(9), 403);
  REQUIRE(database->audited.size() == 1);
  CHECK(database->audited[0].action == "job.create");
  CHECK(database->audited[0].target == "tools");
  CHECK(database->audited[0].identity == "dashboard");
  CHECK(database->audited[0].outcome == "4.03");
}

TEST_CASE_FIXTURE(gateway_fixture, "audit: restart and shutdown are recorded before the answer stops the server") {
  send(atom::action::value, uint64_t{10}, model::system_action::restart, op);
  CHECK(reply_to(10).after == after_reply::restart);
  send(atom::action::value, uint64_t{11}, model::system_action::shutdown, op);
  CHECK(reply_to(11).after == after_reply::shutdown);
  // status is a read: not audited.
  send(atom::action::value, uint64_t{12}, model::system_action::status, op);
  check_json(reply_to(12), 205);
  REQUIRE(database->audited.size() == 2);
  CHECK(database->audited[0].action == "system.restart");
  CHECK(database->audited[0].outcome == "2.04");
  CHECK(database->audited[1].action == "system.shutdown");
}

TEST_CASE_FIXTURE(gateway_fixture, "audit: an artifact upload names the artifact") {
  send(atom::upload::value, uint64_t{13}, artifact_upload{"fw.bin", "content", {}}, op);
  check_json(reply_to(13), 204);
  REQUIRE(database->audited.size() == 1);
  CHECK(database->audited[0].action == "artifact.upload");
  CHECK(database->audited[0].target == "fw.bin");
  CHECK(database->audited[0].outcome == "2.04");
}

TEST_CASE_FIXTURE(gateway_fixture, "audit: key add, rotate and revoke name the identity, never the key") {
  send(atom::keys::value, uint64_t{14}, key_add("node-9"), op);
  auto r = reply_to(14);
  check_json(r, 201);
  CHECK(r.payload.find(mock_secret) != std::string::npos);  // the answer has it ...
  model::key_request rot;
  rot.action = model::key_action::rotate;
  rot.id = "node-9";
  send(atom::keys::value, uint64_t{15}, rot, op);
  model::key_request rev;
  rev.action = model::key_action::revoke;
  rev.id = "node-9";
  send(atom::keys::value, uint64_t{16}, rev, op);
  send(atom::keys::value, uint64_t{17}, model::key_request{}, op);  // a list: a read
  REQUIRE(database->audited.size() == 3);
  CHECK(database->audited[0].action == "key.add");
  CHECK(database->audited[0].outcome == "2.01");
  CHECK(database->audited[1].action == "key.rotate");
  CHECK(database->audited[2].action == "key.revoke");
  for (auto& a : database->audited) {
    CHECK(a.target == "node-9");
    auto text = model::encode_audit_record(a);
    CHECK(text.find(mock_secret) == std::string::npos);  // ... the record never
  }
  // A refused key add is recorded too.
  send(atom::keys::value, uint64_t{18}, key_add("mallory"), outsider);
  check_json(reply_to(18), 401);
  REQUIRE(database->audited.size() == 4);
  CHECK(database->audited[3].action == "key.add");
  CHECK(database->audited[3].target == "mallory");
  CHECK(database->audited[3].outcome == "4.01");
}

TEST_CASE_FIXTURE(gateway_fixture, "audit: registrations are recorded when an operator makes them or they are refused") {
  peer node1{"127.1.0.1", 5683, "node-1", model::role::node, true};
  model::node_registration reg;
  reg.node_id = "node-1";
  reg.ip_address = "127.1.0.1";
  send(atom::enroll::value, uint64_t{19}, reg, node1);  // itself: not an operator action
  check_json(reply_to(19), 201);
  CHECK(database->audited.empty());
  reg.node_id = "node-2";
  send(atom::enroll::value, uint64_t{20}, reg, node1);  // for another node
  check_json(reply_to(20), 403);
  send(atom::enroll::value, uint64_t{21}, reg, op);
  check_json(reply_to(21), 201);
  REQUIRE(database->audited.size() == 2);
  CHECK(database->audited[0].action == "node.register");
  CHECK(database->audited[0].identity == "node-1");
  CHECK(database->audited[0].target == "node-2");
  CHECK(database->audited[0].outcome == "4.03");
  CHECK(database->audited[1].action == "node.register");
  CHECK(database->audited[1].identity == "alice");
  CHECK(database->audited[1].outcome == "2.01");
}

TEST_CASE_FIXTURE(gateway_fixture, "audit: GET /audit from the store for operators, cut to one datagram") {
  model::audit_page page;
  for (uint64_t seq = 40; seq > 20; --seq) {
    model::audit_record a;
    a.seq = seq;
    a.at = fake_epoch;
    a.identity = "alice";
    a.r = model::role::operator_;
    a.address = "127.0.0.9";
    a.action = "job.create";
    a.target = "job-" + std::to_string(seq);
    a.outcome = "2.01";
    page.records.push_back(a);
  }
  page.next = 21;
  database->page = page;
  send(atom::audit::value, uint64_t{22}, model::audit_query{41, 20}, op);
  auto r = reply_to(22);
  check_json(r, 205);
  CHECK(r.payload.size() <= 1024);
  REQUIRE(database->pages_asked.size() == 1);
  CHECK(database->pages_asked[0].before == 41);
  auto doc = json_of(r);
  auto records = doc.root()["records"];
  REQUIRE(records.size() >= 1);
  CHECK(records.size() < 20);
  CHECK(records.at(0)["seq"].as_number() == 40);
  auto last = records.at(records.size() - 1)["seq"].as_number();
  CHECK(doc.root()["next"].as_number() == last);
  // Readers 4.03, an untrusted plain source 4.01; reads are not audited.
  send(atom::audit::value, uint64_t{23}, model::audit_query{}, reader);
  check_json(reply_to(23), 403);
  send(atom::audit::value, uint64_t{24}, model::audit_query{}, outsider);
  check_json(reply_to(24), 401);
  CHECK(database->pages_asked.size() == 1);
  CHECK(database->audited.empty());
}
