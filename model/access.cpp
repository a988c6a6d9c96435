#include "model/access.hpp"

#include <cctype>

namespace coapfleet::model {

const char* to_string(role r) {
  switch (r) {
    case role::anonymous: return "anonymous";
    case role::reader: return "reader";
    case role::node: return "node";
    case role::operator_: return "operator";
    case role::trusted: return "trusted";
  }
  return "anonymous";
}

bool from_string(const std::string& s, role& out) {
  if (s == "node")
    out = role::node;
  else if (s == "operator")
    out = role::operator_;
  else if (s == "reader")
    out = role::reader;
  else
    return false;
  return true;
}

const char* to_string(access a) {
  switch (a) {
    case access::read_fleet: return "read the fleet";
    case access::read_node: return "read a node";
    case access::read_job: return "read a job";
    case access::register_node: return "register a node";
    case access::report_health: return "report health";
    case access::report_step: return "report a job step";
    case access::manage_jobs: return "manage jobs";
    case access::manage_artifacts: return "manage artifacts";
    case access::system_action: return "run system actions";
    case access::manage_keys: return "manage keys";
    case access::manage_nodes: return "administer nodes";
    case access::read_audit: return "read the audit log";
  }
  return "?";
}

namespace {

bool is_read(access a) {
  return a == access::read_fleet || a == access::read_node || a == access::read_job;
}

bool node_scoped(access a) {
  return a == access::read_node || a == access::register_node || a == access::report_health
         || a == access::report_step;
}

}  // namespace

namespace {

bool may(const principal& p, access a, const std::string& target) {
  switch (p.r) {
    case role::trusted:
    case role::operator_:
      return true;
    case role::reader:
      return is_read(a);
    case role::node:
      // A node acts for itself only; it reads the jobs it is notified of
      // (for itself: the gateway checks that it is a target; without a
      // target, the artifacts jobs name) and nothing fleet-wide.
      if (node_scoped(a))
        return target == p.identity;
      return a == access::read_job && (target.empty() || target == p.identity);
    case role::anonymous:
      return false;
  }
  return false;
}

}  // namespace

verdict authorize(const principal& p, access a, const std::string& target) {
  if (may(p, a, target))
    return verdict::allow;
  // Without an identity (plain CoAP from outside the trusted networks) the
  // answer is "authenticate"; with one, "not allowed".
  return p.secure && !p.identity.empty() ? verdict::forbidden : verdict::unauthenticated;
}

bool key_role(role r) {
  return r == role::node || r == role::operator_ || r == role::reader;
}

const char* to_string(key_action a) {
  switch (a) {
    case key_action::add: return "add";
    case key_action::list: return "list";
    case key_action::revoke: return "revoke";
    case key_action::rotate: return "rotate";
  }
  return "?";
}

bool valid_identity(const std::string& id) {
  if (id.empty() || id.size() > 64)
    return false;
  for (unsigned char c : id)
    if (!(std::isalnum(c) || c == '.' || c == '_' || c == '-' || c == '@'))
      return false;
  return true;
}

namespace {

int base64_digit(unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/// Standard base64 with padding (RFC 4648 §4); false on anything else.
bool decode_base64(const std::string& in, std::string& out) {
  if (in.empty() || in.size() % 4 != 0)
    return false;
  out.clear();
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    int d[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      unsigned char c = static_cast<unsigned char>(in[i + k]);
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        d[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0)
        return false;  // a digit after padding
      d[k] = base64_digit(c);
      if (d[k] < 0)
        return false;
    }
    uint32_t v = static_cast<uint32_t>(d[0] << 18 | d[1] << 12 | d[2] << 6 | d[3]);
    out.push_back(static_cast<char>(v >> 16 & 0xFF));
    if (pad < 2)
      out.push_back(static_cast<char>(v >> 8 & 0xFF));
    if (pad < 1)
      out.push_back(static_cast<char>(v & 0xFF));
  }
  return true;
}

}  // namespace

const char* parse_credentials(const std::string& value, credentials& out) {
  std::string text = value;
  static const char basic[] = "Basic ";
  if (text.size() >= sizeof basic - 1) {
    bool prefixed = true;
    for (size_t i = 0; i + 1 < sizeof basic; ++i)
      if (std::tolower(static_cast<unsigned char>(text[i]))
          != std::tolower(static_cast<unsigned char>(basic[i])))
        prefixed = false;
    if (prefixed)
      text.erase(0, sizeof basic - 1);
  }
  std::string plain;
  if (!decode_base64(text, plain))
    return "option 4209 is not base64(user:password)";
  auto colon = plain.find(':');
  if (colon == std::string::npos)
    return "option 4209 is not base64(user:password): no colon";
  out.user = plain.substr(0, colon);
  out.password = plain.substr(colon + 1);
  if (!valid_identity(out.user))
    return "option 4209: the user is not a node id or operator name";
  if (out.password.empty())
    return "option 4209: the password is empty";
  return nullptr;
}

bool same_secret(const std::string& a, const std::string& b) {
  if (a.size() != b.size())
    return false;
  volatile unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i)
    diff = static_cast<unsigned char>(diff | (static_cast<unsigned char>(a[i])
                                              ^ static_cast<unsigned char>(b[i])));
  return diff == 0;
}

}  // namespace coapfleet::model
