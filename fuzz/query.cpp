// Fuzzes the query strings the model parses: `GET /audit`'s
// (decode_audit_query: limit=N&before=SEQ), `GET /nodes`'s
// (decode_nodes_query: status, node_id) and `GET /updates/<job>/spec`'s
// (decode_spec_query: node_id), and valid_node_id. What decodes is within
// its bounds and decodes the same from its canonical form.
//
//   build-fuzz/fuzz/fuzz_query fuzz/corpus/query      (or deploy/fuzz.sh)
#include <string>
#include <string_view>

#include "fuzz_input.hpp"
#include "model/audit.hpp"
#include "model/json.hpp"
#include "model/queries.hpp"

using namespace coapfleet::model;

namespace {

bool node_id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.'
         || c == '_' || c == '-';
}

/// valid_node_id against its definition: 1..64 characters of [A-Za-z0-9._-].
void node_id(std::string_view id) {
  bool expected = !id.empty() && id.size() <= 64;
  for (char c : id)
    expected = expected && node_id_char(c);
  FUZZ_CHECK(valid_node_id(id) == expected);
}

void audit(std::string_view query) {
  auto d = decode_audit_query(query);
  FUZZ_CHECK(d.ok() == d.err.error.empty());
  if (!d.ok())
    return;
  FUZZ_CHECK(d.value.limit >= 1 && d.value.limit <= audit_max_limit);
  // Its canonical form (no leading zeros, no empty parameters) means the same.
  std::string canonical = "limit=" + std::to_string(d.value.limit);
  if (d.value.before > 0)
    canonical += "&before=" + std::to_string(d.value.before);
  auto again = decode_audit_query(canonical);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again.value.limit == d.value.limit && again.value.before == d.value.before);
}

void nodes(std::string_view query) {
  auto d = decode_nodes_query(query);
  FUZZ_CHECK(d.ok() == d.err.error.empty());
  if (!d.ok())
    return;
  auto& v = d.value;
  FUZZ_CHECK(v.status.empty() || v.status == "online" || v.status == "stale" || v.status == "offline");
  std::string canonical;
  if (!v.status.empty())
    canonical = "status=" + v.status;
  if (!v.node_id.empty() && v.node_id.find('&') == std::string::npos)
    canonical += (canonical.empty() ? "" : "&") + std::string("node_id=") + v.node_id;
  else if (!v.node_id.empty())
    return;
  auto again = decode_nodes_query(canonical);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again.value.status == v.status && again.value.node_id == v.node_id);
}

void spec(std::string_view query) {
  auto d = decode_spec_query(query);
  FUZZ_CHECK(d.ok() == d.err.error.empty());
  if (!d.ok())
    return;
  FUZZ_CHECK(d.value.empty() || valid_node_id(d.value));
  if (d.value.empty())
    return;
  auto again = decode_spec_query("node_id=" + d.value);
  FUZZ_CHECK(again.ok() && again.value == d.value);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  audit(text);
  nodes(text);
  spec(text);
  node_id(text);
  // The value after the first '=' too, as the transport hands it over.
  auto eq = text.find('=');
  if (eq != std::string_view::npos)
    node_id(text.substr(eq + 1));
  return 0;
}
