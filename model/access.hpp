// Who may do what: identities, roles, keys and the access policy of the
// main server (DESIGN §9). Pure values and one pure function, so that the
// transport (the hot path and the reads it serves itself) and the gateway
// decide the same way, and tests can state the whole policy.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/types.hpp"

namespace coapfleet::model {

/// The role of an identity. `trusted` is what a plain request from a
/// `--plain-trusted` network (or from anywhere with `--plain-access full`)
/// gets: everything an operator may do, and speaking for any node, as the
/// seeds' `coap-client` examples do on the server's own machine.
enum class role : uint8_t { anonymous, reader, node, operator_, trusted };
const char* to_string(role r);  ///< "anonymous", "reader", "node", "operator", "trusted"
/// Parses the roles a key may have: "node", "operator", "reader".
bool from_string(const std::string& s, role& out);

/// Who sent a request, as the transport established it.
struct principal {
  role r = role::anonymous;
  /// DTLS PSK identity, certificate CN/SAN or option-4209 user; empty on plain CoAP.
  std::string identity;
  bool secure = false;  ///< came over DTLS
};

/// What a request asks to do (the target, where one matters, is a node id).
enum class access : uint8_t {
  read_fleet,        ///< GET /health, /nodes, /updates, /system, /artifacts, a job's status; observe
  read_node,         ///< GET /nodes/<target>/health
  read_job,          ///< a job's spec for <target> (an agent fetching the job it was notified of), artifacts
  register_node,     ///< POST /nodes for <target>
  report_health,     ///< PUT /health for <target>
  report_step,       ///< POST /updates {"action":"report"} for <target>
  manage_jobs,       ///< create, install, cancel, delete jobs
  manage_artifacts,  ///< upload, replace, delete artifacts
  system_action,     ///< POST /system (status, restart, shutdown)
  manage_keys,       ///< keys add / list / revoke / rotate
  manage_nodes,      ///< node administration (an operator-set address, labels, removal)
  read_audit,        ///< GET /audit
};
const char* to_string(access a);

enum class verdict : uint8_t {
  allow,
  unauthenticated,  ///< 4.01: a change (or, with --plain-access none, a read) without an identity
  forbidden,        ///< 4.03: an identity without the right, or a node speaking for another
};

/// The policy: `target` is the node a node-scoped request is about (empty
/// where none is).
verdict authorize(const principal& p, access a, const std::string& target = {});

// -- credentials in CoAP option 4209 (Drogue IoT style) ---------------------------

/// The option a request carries `base64(user:password)` in, optionally after
/// "Basic " as in HTTP basic authentication. Odd, so critical: libcoap has to
/// be told of it (coap_register_option) or it answers 4.02 Bad Option itself.
constexpr uint16_t credentials_option = 4209;

/// User and password of an option-4209 value.
struct credentials {
  std::string user;
  std::string password;
};
/// Parses an option-4209 value ("Basic " is optional; standard base64 with
/// padding). Returns what is wrong with it (never quoting it: it is a
/// secret), or nullptr when `out` is filled with a user that is a valid
/// identity and a non-empty password.
const char* parse_credentials(const std::string& value, credentials& out);

/// Compares two secrets in time that depends on their lengths only.
bool same_secret(const std::string& a, const std::string& b);

// -- keys --------------------------------------------------------------------------

/// One key of an identity. A rotation keeps the previous key valid until
/// `expires_at`; a key without expiry has 0.
struct key_entry {
  std::string id;      ///< the identity (node id or operator/reader name)
  role r = role::node;
  std::string secret;  ///< the PSK exactly as printed (ASCII hex)
  millis created_at = 0;
  millis expires_at = 0;
};

/// Every valid key, as the transport uses it for DTLS handshakes; sorted by
/// id, then newest first.
struct key_table {
  uint64_t version = 0;  ///< changes whenever the keys change
  std::vector<key_entry> keys;
};

/// A key as listed (`keys list`, GET /keys): everything but its secret.
struct key_info {
  std::string id;
  role r = role::node;
  millis created_at = 0;
  millis expires_at = 0;  ///< 0: no expiry
};

/// 1..64 of [A-Za-z0-9._@-] (node ids and operator names).
bool valid_identity(const std::string& id);
/// The rule of valid_identity, for error messages.
constexpr const char* identity_rule = "1..64 characters of A-Z a-z 0-9 . _ @ -";
/// A role a key may carry: node, operator or reader.
bool key_role(role r);

/// A new key is this many random bytes, written as twice as many lower-case
/// hex digits; the PSK is that text verbatim.
constexpr size_t key_bytes = 32;
/// How long the previous keys of a rotated identity keep working, by default
/// and at most.
constexpr int64_t default_grace_seconds = 3600;
constexpr int64_t max_grace_seconds = 30 * 86400;

/// An operator's request about keys (`POST /keys`, `GET /keys`).
enum class key_action : uint8_t { add, list, revoke, rotate };
const char* to_string(key_action a);
struct key_request {
  key_action action = key_action::list;
  std::string id;  ///< add, revoke, rotate
  role r = role::node;  ///< add
  int64_t grace_seconds = default_grace_seconds;  ///< rotate
};

}  // namespace coapfleet::model
