// RFC 6690 link-format, as GET /.well-known/core answers it:
// `</nodes>;ct=50;if="core.b";rt="coapfleet.nodes";obs,</test>;ct=0`.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace coapfleet::cli {

struct link {
  std::string target;  ///< the URI reference between < and >
  /// Attributes in order; quotes removed; a bare flag (`obs`) has value "".
  std::vector<std::pair<std::string, std::string>> attributes;

  /// The value of `name` (all values joined by ' ' when it repeats), "" if absent.
  std::string get(const std::string& name) const;
  bool has(const std::string& name) const;
};

/// Parses a link-format document; malformed parts are skipped.
std::vector<link> parse_link_format(const std::string& text);

}  // namespace coapfleet::cli
