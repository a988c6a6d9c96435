// Validation of values that arrived through the wire API: node ids and job
// specs (per package_type). No JSON here: these check decoded values.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "model/campaign.hpp"
#include "model/json.hpp"
#include "model/targets.hpp"

namespace coapfleet::model {

namespace {

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_name_char(char c) {
  return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

bool has_control_char(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

bool all_space(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
  });
}

/// Exactly `n` lower-case hex digits.
bool lower_hex(std::string_view s, size_t n) {
  return s.size() == n && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

/// `s` quoted for an error message, cut at 64 characters.
std::string quoted(std::string_view s) {
  if (s.size() > 64)
    return "\"" + std::string{s.substr(0, 61)} + "...\"";
  return "\"" + std::string{s} + "\"";
}

problem fail(std::string error, std::string field) {
  return problem{std::move(error), std::move(field)};
}

// Debian package names: [a-z0-9][a-z0-9+.-]*; versions [A-Za-z0-9.+~:_-]+.
bool valid_apt_entry(std::string_view e) {
  auto eq = e.find('=');
  auto name = e.substr(0, eq);
  if (name.empty() || !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
    return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '.' || c == '-'))
      return false;
  if (eq == std::string_view::npos)
    return true;
  auto version = e.substr(eq + 1);
  if (version.empty())
    return false;
  for (char c : version)
    if (!(is_alnum(c) || c == '.' || c == '+' || c == '~' || c == ':' || c == '_' || c == '-'))
      return false;
  return true;
}

// A pip requirement string: not blank, no control characters (newlines would
// smuggle extra lines into a requirements file), not an option ("-r x").
bool valid_pip_entry(std::string_view e) {
  return !e.empty() && !all_space(e) && !has_control_char(e) && e.front() != '-';
}

bool valid_target_path(std::string_view p) {
  if (p.size() < 2 || p.front() != '/' || p.back() == '/' || has_control_char(p))
    return false;
  size_t start = 1;
  while (start <= p.size()) {
    auto end = p.find('/', start);
    if (end == std::string_view::npos)
      end = p.size();
    if (p.substr(start, end - start) == "..")
      return false;
    start = end + 1;
  }
  return true;
}

bool valid_mode(std::string_view m) {
  return (m.size() == 3 || m.size() == 4)
         && std::all_of(m.begin(), m.end(), [](char c) { return c >= '0' && c <= '7'; });
}

problem validate_targets(const std::vector<std::string>& targets, bool by_labels) {
  if (targets.empty() && by_labels)
    return {};
  if (targets.empty())
    return fail("field target_nodes must not be empty (use [\"all\"] for every node)",
                "target_nodes");
  for (auto& t : targets) {
    if (t == "all") {
      if (targets.size() != 1)
        return fail("field target_nodes: \"all\" must be the only entry", "target_nodes");
    } else if (!valid_node_id(t)) {
      return fail("field target_nodes: " + quoted(t)
                    + " is neither \"all\" nor a node id (1..64 characters of A-Z a-z 0-9 . _ -)",
                  "target_nodes");
    }
  }
  auto sorted = targets;
  std::sort(sorted.begin(), sorted.end());
  auto dup = std::adjacent_find(sorted.begin(), sorted.end());
  if (dup != sorted.end())
    return fail("field target_nodes: " + quoted(*dup) + " is listed twice", "target_nodes");
  return {};
}

problem validate_packages(const job_spec& s) {
  if (s.packages.empty())
    return fail("field packages must list at least one package for package_type "
                  + s.package_type,
                "packages");
  for (auto& p : s.packages) {
    if (s.package_type == "apt" && !valid_apt_entry(p))
      return fail("field packages: " + quoted(p)
                    + " is not an apt package (expected name or name=version, the name of"
                      " a-z 0-9 + . - starting with a letter or digit)",
                  "packages");
    if (s.package_type == "pip" && !valid_pip_entry(p))
      return fail("field packages: " + quoted(p)
                    + " is not a pip requirement (blank, control characters or an option)",
                  "packages");
  }
  return {};
}

problem validate_file(const job_spec& s) {
  if (s.artifact.empty())
    return fail("missing field: artifact (package_type file needs it)", "artifact");
  if (!valid_artifact_name(s.artifact))
    return fail(std::string("field artifact must be ") + artifact_name_rule
                  + " (a name in the artifact store)",
                "artifact");
  if (s.target_path.empty())
    return fail("missing field: target_path (package_type file needs it)", "target_path");
  if (!valid_target_path(s.target_path))
    return fail("field target_path must be an absolute file path without .. components",
                "target_path");
  if (!s.mode.empty() && !valid_mode(s.mode))
    return fail("field mode must be an octal string of 3 or 4 digits, e.g. \"0644\"", "mode");
  return {};
}

problem validate_campaign(const job_spec& s) {
  for (size_t i = 0; i < s.waves.size(); ++i)
    if (s.waves[i] < 1 || s.waves[i] > 100 || (i > 0 && s.waves[i] <= s.waves[i - 1]))
      return fail("field waves must hold increasing percentages between 1 and 100", "waves");
  if (!s.waves.empty() && s.waves.back() != 100)
    return fail("field waves must end at 100 (the last wave holds every target)", "waves");
  if (!s.window.empty() && !parse_window(s.window))
    return fail("field window must look like \"02:00-04:00\" (UTC, HH:MM-HH:MM, two different "
                "times)",
                "window");
  return {};
}

}  // namespace

const char* const artifact_name_rule =
  "1..128 characters of A-Z a-z 0-9 . _ + -, not starting with . or -";

bool valid_artifact_name(std::string_view name) {
  return !name.empty() && name.size() <= 128 && name.front() != '.' && name.front() != '-'
         && std::all_of(name.begin(), name.end(), [](char c) { return is_name_char(c) || c == '+'; });
}

bool valid_node_id(std::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), is_name_char);
}

problem validate_job_spec(const job_spec& s) {
  if (s.name.empty() || s.name.size() > 128)
    return fail("field name must be 1..128 characters", "name");
  if (s.version.empty() || s.version.size() > 64)
    return fail("field version must be 1..64 characters", "version");
  if (!valid_inventory_name(s.name) || !valid_version(s.version))
    return fail(std::string("fields name and version are what nodes report in their "
                            "inventory: no control characters"),
                valid_version(s.version) ? "name" : "version");
  const auto& type = s.package_type;
  if (type != "pip" && type != "apt" && type != "file" && type != "script")
    return fail("field package_type must be one of pip, apt, file, script", "package_type");
  if (auto p = validate_targets(s.target_nodes, !s.target_labels.empty()); !p.empty())
    return p;
  if (s.timeout_seconds != 0 && (s.timeout_seconds < 1 || s.timeout_seconds > 86400))
    return fail("field timeout_seconds must be between 1 and 86400", "timeout_seconds");
  if (!s.artifact_sha256.empty() && !lower_hex(s.artifact_sha256, 64))
    return fail("field artifact_sha256 must be 64 lower-case hex digits (a SHA-256)",
                "artifact_sha256");
  if (auto p = validate_campaign(s); !p.empty())
    return p;
  if (!s.health_check.empty() && (all_space(s.health_check) || s.health_check.size() > 65536))
    return fail("field health_check must be a shell command (at most 65536 characters)",
                "health_check");
  if (!s.signature.empty() && !lower_hex(s.signature, 128))
    return fail("field signature must be 128 lower-case hex digits (an Ed25519 signature)",
                "signature");
  if (type == "pip" || type == "apt")
    return validate_packages(s);
  if (type == "file")
    return validate_file(s);
  if (s.script.empty() || all_space(s.script))
    return fail("missing field: script (package_type script needs a shell command)", "script");
  return {};
}

}  // namespace coapfleet::model
