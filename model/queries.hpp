// The query strings of GET /nodes and GET /updates/<job>/spec, parsed
// (libcoap joins a request's Uri-Query options with '&'). Pure: the
// transport hands the text over and answers 4.00 with the problem.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "model/json.hpp"

namespace coapfleet::model {

/// Calls `take(key, value, has_value)` for each non-empty '&'-separated
/// part of `query` ("key=value", or "key" alone); stops at the first false.
/// False when one was.
bool for_each_query_part(
  std::string_view query,
  const std::function<bool(std::string_view, std::string_view, bool)>& take);

/// A page's size when after= comes without limit=.
constexpr uint32_t default_page_limit = 1000;
constexpr uint32_t max_page_limit = 10000;

/// GET /nodes?status=online|stale|offline&health=healthy|unhealthy&node_id=ID
/// &limit=N&after=ID (all optional; health: the verdict of the node's latest
/// report, a node that never reported is neither). With limit or after the answer is a page: at most `limit`
/// nodes with ids after `after`, in id order, and `next` (the cursor of the
/// following page, null after the last).
struct nodes_query {
  std::string status;   ///< "" for every status
  std::string health;   ///< "" for every node, "healthy" or "unhealthy"
  std::string node_id;  ///< "" for every node
  uint32_t limit = 0;   ///< 0: not paged
  std::string after;    ///< "" from the first node
};
decoded<nodes_query> decode_nodes_query(std::string_view query);
template <class F> auto inspect(F& f, nodes_query& x) {
  return f(x.status, x.health, x.node_id, x.limit, x.after);
}

/// GET /updates/<job>/spec?node_id=ID: the node id ("" without one).
decoded<std::string> decode_spec_query(std::string_view query);

}  // namespace coapfleet::model
