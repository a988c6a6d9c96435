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

/// GET /nodes?status=online|stale|offline&node_id=ID (both optional).
struct nodes_query {
  std::string status;   ///< "" for every status
  std::string node_id;  ///< "" for every node
};
decoded<nodes_query> decode_nodes_query(std::string_view query);

/// GET /updates/<job>/spec?node_id=ID: the node id ("" without one).
decoded<std::string> decode_spec_query(std::string_view query);

}  // namespace coapfleet::model
