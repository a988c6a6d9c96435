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

}  // namespace coapfleet::model
