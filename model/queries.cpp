#include "model/queries.hpp"

namespace coapfleet::model {

bool for_each_query_part(
  std::string_view query,
  const std::function<bool(std::string_view, std::string_view, bool)>& take) {
  size_t pos = 0;
  while (pos <= query.size()) {
    auto end = query.find('&', pos);
    auto part = query.substr(pos, end == std::string_view::npos ? std::string_view::npos
                                                                : end - pos);
    pos = end == std::string_view::npos ? query.size() + 1 : end + 1;
    if (part.empty())
      continue;
    auto eq = part.find('=');
    auto key = part.substr(0, eq);
    auto value = eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1);
    if (!take(key, value, eq != std::string_view::npos))
      return false;
  }
  return true;
}

decoded<nodes_query> decode_nodes_query(std::string_view query) {
  decoded<nodes_query> d;
  bool has_limit = false, has_after = false;
  for_each_query_part(query, [&](std::string_view key, std::string_view value, bool) {
    if (key == "status") {
      if (value != "online" && value != "stale" && value != "offline") {
        d.err = {"query status must be online, stale or offline", "status"};
        return false;
      }
      d.value.status = std::string(value);
    } else if (key == "health") {
      if (value != "healthy" && value != "unhealthy") {
        d.err = {"query health must be healthy or unhealthy", "health"};
        return false;
      }
      d.value.health = std::string(value);
    } else if (key == "node_id") {
      d.value.node_id = std::string(value);
    } else if (key == "limit") {
      uint64_t n = 0;
      bool digits = !value.empty() && value.size() <= 6;
      for (char c : value) {
        digits = digits && c >= '0' && c <= '9';
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      if (has_limit || !digits || n < 1 || n > max_page_limit) {
        d.err = {has_limit ? "query limit given twice"
                           : "query limit must be a page size of 1.."
                               + std::to_string(max_page_limit) + " nodes",
                 "limit"};
        return false;
      }
      has_limit = true;
      d.value.limit = static_cast<uint32_t>(n);
    } else if (key == "after") {
      if (has_after || !valid_node_id(value)) {
        d.err = {has_after ? "query after given twice"
                           : "query after must be a node id (the next cursor of the previous "
                             "page): 1..64 characters of A-Z a-z 0-9 . _ -",
                 "after"};
        return false;
      }
      has_after = true;
      d.value.after = std::string(value);
    } else {
      d.err = {"unknown query parameter " + std::string(key)
                 + " (expected status, health, node_id, limit, after)",
               std::string(key)};
      return false;
    }
    return true;
  });
  if (d.ok() && has_after && !has_limit)
    d.value.limit = default_page_limit;
  return d;
}

decoded<std::string> decode_spec_query(std::string_view query) {
  decoded<std::string> d;
  for_each_query_part(query, [&](std::string_view key, std::string_view value, bool has_value) {
    if (key != "node_id" || !has_value) {
      d.err = {"unknown query parameter " + std::string(key) + " (expected node_id=ID)",
               std::string(key)};
      return false;
    }
    if (!valid_node_id(value)) {
      d.err = {"query node_id must be 1..64 characters of A-Z a-z 0-9 . _ -", "node_id"};
      return false;
    }
    d.value = std::string(value);
    return true;
  });
  return d;
}

}  // namespace coapfleet::model
