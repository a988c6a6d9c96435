// JSON of the keys API (`POST /keys`, `GET /keys`): the operator's requests
// and the answers. A key's secret appears in one answer only: the one that
// issues it.
#include <string>
#include <string_view>

#include "model/json.hpp"
#include "model/json_read.hpp"
#include "model/json_write.hpp"

namespace coapfleet::model {

namespace {

void read_identity(json_read::reader& r, std::string& out) {
  r.required_string("id", out);
  if (r.ok() && !valid_identity(out))
    r.fail(std::string{"field id must be "} + identity_rule, "id");
}

}  // namespace

decoded<key_request> decode_keys_request(std::string_view body) {
  json_read::Document doc;
  decoded<key_request> d;
  if (!json_read::parse_object(body, doc, d.err))
    return d;
  json_read::reader r{doc};
  auto& q = d.value;
  std::string action;
  r.required_string("action", action);
  if (!r.ok()) {
    d.err = r.err;
    return d;
  }
  if (action == "add") {
    q.action = key_action::add;
    read_identity(r, q.id);
    std::string role_name;
    r.required_string("role", role_name);
    if (r.ok() && !from_string(role_name, q.r))
      r.fail("field role must be one of node, operator, reader", "role");
  } else if (action == "list") {
    q.action = key_action::list;
  } else if (action == "revoke") {
    q.action = key_action::revoke;
    read_identity(r, q.id);
  } else if (action == "rotate") {
    q.action = key_action::rotate;
    read_identity(r, q.id);
    r.optional_int("grace_seconds", q.grace_seconds, 0, max_grace_seconds);
  } else {
    r.fail("unknown action: " + action + " (expected add, list, revoke, rotate)", "action");
  }
  d.err = r.err;
  return d;
}

using namespace json_write;

std::string encode_key_issued(const key_entry& k, int64_t grace_seconds) {
  return write([&](writer& w) {
    w.StartObject();
    member(w, "id", k.id);
    member(w, "role", to_string(k.r));
    member(w, "key", k.secret);
    if (grace_seconds >= 0) {
      key(w, "grace_seconds");
      w.Int64(grace_seconds);
    }
    w.EndObject();
  });
}

std::string encode_keys(const std::vector<key_info>& keys) {
  return write(
    [&](writer& w) {
      w.StartObject();
      key(w, "keys");
      w.StartArray();
      for (auto& k : keys) {
        w.StartObject();
        member(w, "id", k.id);
        member(w, "role", to_string(k.r));
        member(w, "created_at", at{k.created_at});
        key(w, "expires_at");
        if (k.expires_at == 0)
          w.Null();
        else
          put(w, at{k.expires_at});
        w.EndObject();
      }
      w.EndArray();
      w.EndObject();
    },
    16 + keys.size() * 96);
}

}  // namespace coapfleet::model
