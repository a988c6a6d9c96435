// The audit log (DESIGN §9): every operator action (jobs, artifacts, system
// actions, keys, node administration) and every refused change, with who
// asked, from where, when, and what came of it. Pure values and their JSON,
// shared by the gateway (which records), the store (which keeps), the
// transport (which serves GET /audit) and the CLI.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/access.hpp"
#include "model/json.hpp"
#include "model/types.hpp"

namespace coapfleet::model {

/// One audited request. Never carries key material: a key action names the
/// key's identity only.
struct audit_record {
  uint64_t seq = 0;      ///< assigned by the store (0 until stored), grows with time
  millis at = 0;         ///< when the request was answered
  std::string identity;  ///< DTLS identity; empty for plain CoAP
  role r = role::anonymous;  ///< the role the transport established
  bool secure = false;   ///< came over DTLS
  std::string address;   ///< the sender's address
  uint16_t port = 0;     ///< and port
  std::string action;    ///< "job.create", "key.add", ... (see README, Audit)
  std::string target;    ///< job id, artifact name, node id or key identity; may be empty
  std::string outcome;   ///< the CoAP code answered, "2.01", "4.03", ...
  std::string detail;    ///< a short reason for a refusal or failure; empty on success
};

/// A page of `GET /audit`: records with seq below `before` (0: from the
/// newest), newest first, at most `limit`.
struct audit_query {
  uint64_t before = 0;
  uint32_t limit = 100;
};
/// A page of rows newest first, by sequence number: parses `limit` (1..
/// max_limit) and `before` from a URI query into `limit` and `before`; any
/// other parameter, or a bad value, is the problem returned.
problem decode_seq_page(std::string_view query, uint32_t max_limit, uint64_t& before,
                        uint32_t& limit);
/// {<head>"<list>":[encoded...],"next":SEQ|null}; `head` is members with
/// their trailing comma, or empty.
std::string encode_seq_page(std::string_view list, const std::vector<std::string_view>& encoded,
                            uint64_t next, std::string_view head);

struct audit_page {
  std::vector<audit_record> records;
  /// The `before` of the next (older) page; 0 when there is none.
  uint64_t next = 0;
};

constexpr uint32_t audit_default_limit = 100;
constexpr uint32_t audit_max_limit = 1000;
/// Rows the store keeps by default (--audit-keep); the oldest go first.
constexpr uint64_t audit_default_keep = 100000;
/// A detail is cut to this many bytes (it is a reason, not a body).
constexpr size_t audit_detail_max = 200;

/// "2.01" for 201.
std::string code_text(uint16_t code);

/// `GET /audit`'s query: `limit=N` (1..audit_max_limit), `before=SEQ` (>= 1);
/// anything else is a problem naming the parameter.
decoded<audit_query> decode_audit_query(std::string_view query);

/// One record as `GET /audit` lists it: {"seq","at","at_ms","identity",
/// "role","secure","address","port","action","target","outcome","detail"}
/// (identity, target and detail null when empty).
std::string encode_audit_record(const audit_record& r);
/// {"records":[<encoded records>...],"next":<seq>|null} from records
/// already encoded by encode_audit_record (newest first).
std::string encode_audit_page(const std::vector<std::string_view>& encoded, uint64_t next);
std::string encode_audit_page(const audit_page& page);

}  // namespace coapfleet::model
