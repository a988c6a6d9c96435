// JSON of the node-state history (GET /nodes/<id>/history, GET
// /updates/<job>/history).
#include "model/audit.hpp"
#include "model/history.hpp"
#include "model/json_write.hpp"

namespace coapfleet::model {

using namespace json_write;

decoded<history_query> decode_history_query(std::string_view query) {
  decoded<history_query> d;
  d.err = decode_seq_page(query, history_max_limit, d.value.before, d.value.limit);
  return d;
}

std::string encode_history_entry(const history_entry& e) {
  return write([&](writer& w) {
    w.StartObject();
    member(w, "seq", uint64_t{e.seq});
    member(w, "at", at{e.at});
    member(w, "node_id", e.node_id);
    member(w, "job_id", e.job_id);
    member(w, "attempt", e.attempt);
    member(w, "status", to_string(e.state));
    member(w, "result", e.result);
    string_or_null(w, "error_message", e.error_message);
    w.EndObject();
  });
}

std::string encode_history_page(const history_query& q,
                                const std::vector<std::string_view>& entries, uint64_t next) {
  auto head = write([&](writer& w) {
    w.StartObject();
    member(w, q.by_job ? "job_id" : "node_id", q.id);
    w.EndObject();
  });
  // {"node_id":"x"} → "node_id":"x", as the page's first member.
  head = head.substr(1, head.size() - 2) + ",";
  return encode_seq_page("history", entries, next, head);
}

}  // namespace coapfleet::model
