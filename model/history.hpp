// The history of node states in jobs: every change of a node's state or
// attempt in every job, with its time (the store appends them; see
// store_sql.cpp, schema v5). Read newest first, a page at a time, by node
// (GET /nodes/<id>/history) or by job (GET /updates/<job>/history).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/json.hpp"
#include "model/types.hpp"

namespace coapfleet::model {

struct history_entry {
  uint64_t seq = 0;  ///< the store's, grows with time
  std::string node_id;
  std::string job_id;
  uint32_t attempt = 1;
  node_update_state state = node_update_state::pending;
  int32_t result = 0;
  std::string error_message;
  millis at = 0;
};

struct history_query {
  bool by_job = false;  ///< `id` names a job (else a node)
  std::string id;
  uint64_t before = 0;  ///< entries with a seq below it (0: from the newest)
  uint32_t limit = 100;
};

struct history_page {
  std::vector<history_entry> entries;  ///< newest first
  uint64_t next = 0;                   ///< `before` of the next (older) page; 0: none
};

constexpr uint32_t history_max_limit = 1000;

/// The query of GET /nodes/<id>/history (and /updates/<job>/history):
/// limit=1..1000 (default 100), before=SEQ; anything else is 4.00.
decoded<history_query> decode_history_query(std::string_view query);

std::string encode_history_entry(const history_entry& e);
/// {"node_id"|"job_id": id, "history": [entries...], "next": SEQ|null}
std::string encode_history_page(const history_query& q,
                                const std::vector<std::string_view>& entries, uint64_t next);

}  // namespace coapfleet::model
