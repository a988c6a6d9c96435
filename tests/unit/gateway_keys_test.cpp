// The gateway's key requests (GET and POST /keys) with a mock keys actor:
// who may manage keys (from the peer's role, never from the body), the
// answer of each action (code, content format, JSON shape), and the keys
// actor's errors as JSON error bodies.
#include "gateway_fixture.hpp"

using namespace coapfleet;
using namespace coapfleet::actor_test;

namespace {

peer with_role(model::role r, std::string identity = {}, bool secure = false) {
  peer p{"127.0.0.9", 41000, std::move(identity)};
  p.role = r;
  p.secure = secure;
  return p;
}

model::key_request add(const std::string& id, model::role r) {
  model::key_request q;
  q.action = model::key_action::add;
  q.id = id;
  q.r = r;
  return q;
}

model::key_request act(model::key_action a, const std::string& id = {}, int64_t grace = 3600) {
  model::key_request q;
  q.action = a;
  q.id = id;
  q.grace_seconds = grace;
  return q;
}

}  // namespace

TEST_CASE_FIXTURE(gateway_fixture, "gateway keys: add is 2.01 with id, role and the key") {
  auto op = with_role(model::role::operator_, "alice", true);
  send(atom::keys::value, uint64_t{1}, add("node-1", model::role::node), op);
  CHECK(keys_do->asked == std::vector<std::string>{"create node-1 node"});
  auto r = reply_to(1);
  check_json(r, 201);
  auto doc = json_of(r);
  CHECK(doc.root()["id"].as_string() == "node-1");
  CHECK(doc.root()["role"].as_string() == "node");
  CHECK(doc.root()["key"].as_string() == mock_secret);
}

TEST_CASE_FIXTURE(gateway_fixture, "gateway keys: list is 2.05 without secrets") {
  keys_do->keys = {{"alice", model::role::operator_, fake_epoch, 0},
                   {"node-1", model::role::node, fake_epoch, fake_epoch + 3'600'000}};
  send(atom::keys::value, uint64_t{2}, act(model::key_action::list),
       with_role(model::role::trusted));
  auto r = reply_to(2);
  check_json(r, 205);
  CHECK(r.payload == model::encode_keys(keys_do->keys));
  auto doc = json_of(r);
  auto keys = doc.root()["keys"];
  REQUIRE(keys.size() == 2);
  CHECK(keys.at(0)["id"].as_string() == "alice");
  CHECK(keys.at(0)["role"].as_string() == "operator");
  CHECK(keys.at(0)["expires_at"].is_null());
  CHECK(keys.at(1)["expires_at"].as_string() == model::format_time(fake_epoch + 3'600'000));
  CHECK(r.payload.find("\"key\"") == std::string::npos);
  CHECK(r.payload.find("secret") == std::string::npos);
}

TEST_CASE_FIXTURE(gateway_fixture, "gateway keys: revoke is 2.04, rotate 2.01 with the new key") {
  auto op = with_role(model::role::operator_, "alice", true);
  send(atom::keys::value, uint64_t{3}, act(model::key_action::revoke, "node-1"), op);
  auto r = reply_to(3);
  check_json(r, 204);
  auto doc = json_of(r);
  CHECK(doc.root()["id"].as_string() == "node-1");
  CHECK(doc.root()["message"].as_string() == "Keys of node-1 revoked (2)");

  send(atom::keys::value, uint64_t{4}, act(model::key_action::rotate, "alice", 60), op);
  r = reply_to(4);
  check_json(r, 201);
  doc = json_of(r);
  CHECK(doc.root()["id"].as_string() == "alice");
  CHECK(doc.root()["role"].as_string() == "operator");
  CHECK(doc.root()["key"].as_string() == mock_secret);
  CHECK(doc.root()["grace_seconds"].as_int() == 60);
  CHECK(keys_do->asked == std::vector<std::string>{"revoke node-1", "rotate alice 60"});
}

TEST_CASE_FIXTURE(gateway_fixture, "gateway keys: only operators (and trusted peers) manage keys") {
  struct refused {
    model::role r;
    uint16_t code;
    const char* role_name;
  };
  uint64_t id = 10;
  for (auto c : {refused{model::role::anonymous, 401, "anonymous"},
                 refused{model::role::reader, 403, "reader"},
                 refused{model::role::node, 403, "node"}}) {
    CAPTURE(c.role_name);
    for (auto a : {model::key_action::add, model::key_action::list, model::key_action::revoke,
                   model::key_action::rotate}) {
      auto q = a == model::key_action::add ? add("node-1", model::role::operator_)
                                           : act(a, "node-1");
      bool named = c.r != model::role::anonymous;  // identities come with DTLS
      send(atom::keys::value, ++id, q, with_role(c.r, named ? "x" : "", named));
      auto r = reply_to(id);
      check_json(r, c.code);
      auto doc = json_of(r);
      CHECK_FALSE(doc.root()["error"].as_string().empty());
      CHECK(doc.root()["role"].as_string() == c.role_name);
    }
  }
  // The keys actor was never asked.
  CHECK(keys_do->asked.empty());
  for (auto r : {model::role::operator_, model::role::trusted}) {
    send(atom::keys::value, ++id, act(model::key_action::list), with_role(r, "ops"));
    check_json(reply_to(id), 205);
  }
  CHECK(keys_do->asked.size() == 2);
}

TEST_CASE_FIXTURE(gateway_fixture, "gateway keys: the keys actor's errors become JSON errors") {
  auto op = with_role(model::role::operator_, "alice", true);
  keys_do->next = verdict::fail(make_api_error(
    api_errc::conflict, "identity already has a key (revoke or rotate it)", "id", "id", "n1"));
  send(atom::keys::value, uint64_t{20}, add("n1", model::role::node), op);
  auto r = reply_to(20);
  check_json(r, 409);
  auto doc = json_of(r);
  CHECK(doc.root()["field"].as_string() == "id");
  CHECK(doc.root()["id"].as_string() == "n1");

  keys_do->next =
    verdict::fail(make_api_error(api_errc::not_found, "identity has no key", "id", "id", "n2"));
  send(atom::keys::value, uint64_t{21}, act(model::key_action::revoke, "n2"), op);
  check_json(reply_to(21), 404);
  send(atom::keys::value, uint64_t{22}, act(model::key_action::rotate, "n2"), op);
  check_json(reply_to(22), 404);

  // No answer within the request timeout: 5.03 with Max-Age.
  keys_do->next = verdict::never();
  send(atom::keys::value, uint64_t{23}, act(model::key_action::list), op);
  CHECK(wire->answers_to(23) == 0);
  advance(request_timeout + std::chrono::seconds(1));
  r = reply_to(23);
  CHECK(r.code == 503);
  CHECK(r.max_age != UINT32_MAX);
}

TEST_CASE("gateway keys: a gateway without a keys actor answers 5.03") {
  gateway_fixture f;
  server::gateway_peers peers = f.peers;
  peers.keys = keys_actor{};
  auto g = f.own(server::spawn_gateway(*f.sys, server::gateway_config{}, peers));
  f.sched->run();
  caf::anon_send(g, atom::keys::value, uint64_t{30}, act(model::key_action::list),
                 with_role(model::role::operator_, "ops"));
  f.sched->run();
  auto r = f.reply_to(30);
  CHECK(r.code == 503);
}
