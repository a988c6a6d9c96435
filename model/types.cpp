// Names of the model's enums and the small helpers of its value types.
#include "model/types.hpp"

#include <iterator>

namespace coapfleet::model {

namespace {

constexpr const char* node_update_state_names[] = {
  "pending", "notified", "downloading", "downloaded", "installing",
  "succeeded", "failed", "timed_out", "cancelled", "skipped", "rolled_back",
};

constexpr const char* job_status_names[] = {
  "created", "in_progress", "completed", "failed", "partially_failed", "cancelled",
};

}  // namespace

const char* to_string(node_status s) {
  switch (s) {
    case node_status::online: return "online";
    case node_status::stale: return "stale";
    case node_status::offline: return "offline";
  }
  return "unknown";
}

const char* to_string(node_update_state s) {
  auto i = static_cast<size_t>(s);
  return i < std::size(node_update_state_names) ? node_update_state_names[i] : "unknown";
}

bool from_string(const std::string& s, node_update_state& out) {
  for (size_t i = 0; i < std::size(node_update_state_names); ++i) {
    if (s == node_update_state_names[i]) {
      out = static_cast<node_update_state>(i);
      return true;
    }
  }
  return false;
}

bool is_terminal(node_update_state s) {
  switch (s) {
    case node_update_state::succeeded:
    case node_update_state::failed:
    case node_update_state::timed_out:
    case node_update_state::cancelled:
    case node_update_state::skipped:
    case node_update_state::rolled_back:
      return true;
    default:
      return false;
  }
}

const char* to_string(job_status s) {
  auto i = static_cast<size_t>(s);
  return i < std::size(job_status_names) ? job_status_names[i] : "unknown";
}

bool from_string(const std::string& s, job_status& out) {
  for (size_t i = 0; i < std::size(job_status_names); ++i) {
    if (s == job_status_names[i]) {
      out = static_cast<job_status>(i);
      return true;
    }
  }
  return false;
}

uint32_t job_counts::finished() const {
  uint32_t n = 0;
  for (size_t i = 0; i < std::size(by_state); ++i)
    if (is_terminal(static_cast<node_update_state>(i)))
      n += by_state[i];
  return n;
}

uint64_t etag_of_sha256(const std::string& sha256_hex) {
  uint64_t out = 0;
  for (size_t i = 0; i + 1 < sha256_hex.size() && i < 16; i += 2) {
    auto digit = [](char c) -> uint64_t {
      return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                            : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 0;
    };
    out = (out << 8) | (digit(sha256_hex[i]) << 4) | digit(sha256_hex[i + 1]);
  }
  return out == 0 ? 1 : out;
}

}  // namespace coapfleet::model
