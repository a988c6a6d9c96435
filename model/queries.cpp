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
  for_each_query_part(query, [&](std::string_view key, std::string_view value, bool) {
    if (key == "status") {
      if (value != "online" && value != "stale" && value != "offline") {
        d.err = {"query status must be online, stale or offline", "status"};
        return false;
      }
      d.value.status = std::string(value);
    } else if (key == "node_id") {
      d.value.node_id = std::string(value);
    } else {
      d.err = {"unknown query parameter " + std::string(key) + " (expected status, node_id)",
               std::string(key)};
      return false;
    }
    return true;
  });
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
