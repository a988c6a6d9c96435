// Unit tests of model/json for the keys API: POST /keys bodies (every action,
// every field at fault) and the answers of add/rotate and GET /keys, which
// never carry a secret.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "model/access.hpp"
#include "model/json.hpp"
#include "model_json_helpers.hpp"

using namespace coapfleet::model;
using namespace model_json_test;

TEST_CASE("decode_keys_request: add, list, revoke, rotate") {
  auto add = decode_keys_request(R"({"action":"add","id":"node-1","role":"node"})");
  REQUIRE(add.ok());
  CHECK(add.value.action == key_action::add);
  CHECK(add.value.id == "node-1");
  CHECK(add.value.r == role::node);
  auto op = decode_keys_request(R"({"action":"add","id":"alice@ops","role":"operator"})");
  REQUIRE(op.ok());
  CHECK(op.value.r == role::operator_);
  auto reader = decode_keys_request(R"({"action":"add","id":"dash.board_1","role":"reader"})");
  REQUIRE(reader.ok());
  CHECK(reader.value.r == role::reader);

  auto list = decode_keys_request(R"({"action":"list"})");
  REQUIRE(list.ok());
  CHECK(list.value.action == key_action::list);

  auto revoke = decode_keys_request(R"({"action":"revoke","id":"node-1"})");
  REQUIRE(revoke.ok());
  CHECK(revoke.value.action == key_action::revoke);
  CHECK(revoke.value.id == "node-1");

  auto rotate = decode_keys_request(R"({"action":"rotate","id":"node-1"})");
  REQUIRE(rotate.ok());
  CHECK(rotate.value.action == key_action::rotate);
  CHECK(rotate.value.grace_seconds == default_grace_seconds);
  CHECK(default_grace_seconds == 3600);
  auto short_grace = decode_keys_request(R"({"action":"rotate","id":"node-1","grace_seconds":0})");
  REQUIRE(short_grace.ok());
  CHECK(short_grace.value.grace_seconds == 0);

  for (auto a : {key_action::add, key_action::list, key_action::revoke, key_action::rotate}) {
    std::string name = to_string(a);
    CHECK_FALSE(name.empty());
    CHECK(name != "?");
  }
}

TEST_CASE("decode_keys_request: the field at fault") {
  check_problem(decode_keys_request("{}").err, "missing field: action", "action");
  check_problem(decode_keys_request(R"({"action":"purge"})").err,
                "unknown action: purge (expected add, list, revoke, rotate)", "action");
  check_problem(decode_keys_request(R"({"action":"add","role":"node"})").err,
                "missing field: id", "id");
  check_fails_on(decode_keys_request(R"({"action":"add","id":"","role":"node"})"), "id");
  check_fails_on(decode_keys_request(R"({"action":"add","id":"a b","role":"node"})"), "id");
  check_fails_on(
    decode_keys_request(R"({"action":"add","id":")" + std::string(65, 'x') + R"(","role":"node"})"),
    "id");
  check_fails_on(decode_keys_request(R"({"action":"add","id":7,"role":"node"})"), "id");
  check_problem(decode_keys_request(R"({"action":"add","id":"n1"})").err, "missing field: role",
                "role");
  // trusted and anonymous are what the transport decides, never a key's role.
  for (auto bad : {"admin", "trusted", "anonymous", ""})
    check_problem(
      decode_keys_request(std::string(R"({"action":"add","id":"n1","role":")") + bad + "\"}").err,
      "field role must be one of node, operator, reader", "role");
  check_fails_on(decode_keys_request(R"({"action":"revoke"})"), "id");
  check_fails_on(decode_keys_request(R"({"action":"rotate","id":"x/y"})"), "id");
  check_fails_on(decode_keys_request(R"({"action":"rotate","id":"n1","grace_seconds":-1})"),
                 "grace_seconds");
  check_fails_on(decode_keys_request(R"({"action":"rotate","id":"n1","grace_seconds":1.5})"),
                 "grace_seconds");
  check_fails_on(decode_keys_request(R"({"action":"rotate","id":"n1","grace_seconds":"60"})"),
                 "grace_seconds");
  check_fails_on(decode_keys_request(
                   R"({"action":"rotate","id":"n1","grace_seconds":)"
                   + std::to_string(max_grace_seconds + 1) + "}"),
                 "grace_seconds");
  CHECK_FALSE(decode_keys_request("").ok());
  CHECK_FALSE(decode_keys_request("[]").ok());
}

TEST_CASE("encode_key_issued: id, role and the key; grace only for a rotation") {
  key_entry k;
  k.id = "node-1";
  k.r = role::node;
  k.secret = std::string(64, 'a');
  k.created_at = 1758103200000;
  auto doc = parse_json(encode_key_issued(k));
  CHECK(str(doc, "id") == "node-1");
  CHECK(str(doc, "role") == "node");
  CHECK(str(doc, "key") == k.secret);
  CHECK_FALSE(has(doc, "grace_seconds"));
  CHECK(doc.MemberCount() == 3);
  auto rotated = parse_json(encode_key_issued(k, 60));
  CHECK(rotated["grace_seconds"].GetInt64() == 60);
}

TEST_CASE("encode_keys: times as text, null for no expiry, never a secret") {
  std::vector<key_info> keys{{"node-1", role::node, 1758103200000, 0},
                             {"ops", role::operator_, 1758103200000, 1758106800000}};
  auto text = encode_keys(keys);
  CHECK(text.find("secret") == std::string::npos);
  CHECK(text.find("\"key\"") == std::string::npos);
  auto doc = parse_json(text);
  REQUIRE(doc["keys"].IsArray());
  REQUIRE(doc["keys"].Size() == 2);
  auto& first = doc["keys"][0];
  CHECK(str(first, "id") == "node-1");
  CHECK(str(first, "role") == "node");
  CHECK(str(first, "created_at") == "2025-09-17T10:00:00Z");
  CHECK(first["expires_at"].IsNull());
  auto& second = doc["keys"][1];
  CHECK(str(second, "role") == "operator");
  CHECK(str(second, "expires_at") == "2025-09-17T11:00:00Z");
  CHECK(first.MemberCount() == 4);
  CHECK(encode_keys({}) == R"({"keys":[]})");
}

TEST_CASE("identities and the roles a key may carry") {
  CHECK(valid_identity("node-1"));
  CHECK(valid_identity("alice@example.org"));
  CHECK_FALSE(valid_identity(""));
  CHECK_FALSE(valid_identity(std::string(65, 'a')));
  CHECK_FALSE(valid_identity("a:b"));
  CHECK(key_role(role::node));
  CHECK(key_role(role::operator_));
  CHECK(key_role(role::reader));
  CHECK_FALSE(key_role(role::trusted));
  CHECK_FALSE(key_role(role::anonymous));
}
