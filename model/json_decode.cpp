// Decoders of the wire API's request bodies (RapidJSON DOM). Each checks
// presence and types and names the first field at fault; value rules of job
// specs live in json_validate.cpp.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "model/json.hpp"

namespace coapfleet::model {

namespace {

using rapidjson::Document;
using rapidjson::Value;

constexpr const char* empty_body_error =
  "empty body: this request needs a JSON object; send one with coap-client -f - "
  "(echo '{...}' | coap-client -m post -f - URL) or -e '{...}'";

constexpr const char* node_id_rule = "1..64 characters of A-Z a-z 0-9 . _ -";

bool blank(std::string_view body) {
  for (char c : body)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
      return false;
  return true;
}

/// Parses `body` into `doc`; false with `err` set when it is empty or not JSON.
bool parse(std::string_view body, Document& doc, problem& err) {
  if (blank(body)) {
    err = {empty_body_error, {}};
    return false;
  }
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(body.data(), body.size());
  if (doc.HasParseError()) {
    err = {std::string{"invalid JSON: "} + rapidjson::GetParseError_En(doc.GetParseError())
             + " at offset " + std::to_string(doc.GetErrorOffset()),
           {}};
    return false;
  }
  return true;
}

bool parse_object(std::string_view body, Document& doc, problem& err) {
  if (!parse(body, doc, err))
    return false;
  if (!doc.IsObject()) {
    err = {"request body must be a JSON object", {}};
    return false;
  }
  return true;
}

std::string str(const Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

std::string num_text(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

bool is_integer(const Value& v) {
  if (v.IsInt64() || v.IsUint64())
    return true;
  if (!v.IsNumber())
    return false;
  double d = v.GetDouble();
  return std::isfinite(d) && std::floor(d) == d;
}

bool read_strings(const Value& v, std::vector<std::string>& out) {
  if (!v.IsArray())
    return false;
  std::vector<std::string> result;
  result.reserve(v.Size());
  for (auto& e : v.GetArray()) {
    if (!e.IsString())
      return false;
    result.push_back(str(e));
  }
  out = std::move(result);
  return true;
}

bool read_attributes(const Value& v, attributes& out) {
  if (!v.IsObject())
    return false;
  attributes result;
  result.reserve(v.MemberCount());
  for (auto& m : v.GetObject()) {
    scalar x;
    if (m.value.IsString())
      x = scalar::of(str(m.value));
    else if (m.value.IsBool())
      x = scalar::of_bool(m.value.GetBool());
    else if (m.value.IsNumber())
      x = scalar::of(m.value.GetDouble());
    else if (!m.value.IsNull())
      return false;
    result.emplace_back(str(m.name), std::move(x));
  }
  out = std::move(result);
  return true;
}

/// Reads the members of one JSON object, keeping the first problem found.
/// Optional members that are absent or null leave their output untouched.
class reader {
public:
  explicit reader(const Value& obj) : obj_(obj) {}

  problem err;
  bool ok() const { return err.empty(); }

  bool has(const char* name) const { return find(name) != nullptr; }

  void fail(std::string error, const char* field) {
    if (err.empty())
      err = {std::move(error), field};
  }

  void required_string(const char* name, std::string& out) {
    if (!ok())
      return;
    auto v = find(name);
    if (v == nullptr)
      return fail(std::string{"missing field: "} + name, name);
    if (!v->IsString())
      return fail(std::string{"field "} + name + " must be a string", name);
    out = str(*v);
  }

  void required_nonempty(const char* name, std::string& out) {
    required_string(name, out);
    if (ok() && out.empty())
      fail(std::string{"field "} + name + " must not be empty", name);
  }

  void required_node_id(std::string& out) {
    required_string("node_id", out);
    if (ok() && !valid_node_id(out))
      fail(std::string{"field node_id must be "} + node_id_rule, "node_id");
  }

  void optional_string(const char* name, std::string& out) {
    if (auto v = present(name); v && !v->IsString())
      fail(std::string{"field "} + name + " must be a string", name);
    else if (v)
      out = str(*v);
  }

  void optional_bool(const char* name, bool& out) {
    if (auto v = present(name); v && !v->IsBool())
      fail(std::string{"field "} + name + " must be a boolean (true or false)", name);
    else if (v)
      out = v->GetBool();
  }

  /// A number in [lo, hi], or null (which leaves `out` absent).
  void optional_number(const char* name, double& out, double lo, double hi) {
    auto v = present(name);
    if (!v)
      return;
    if (!v->IsNumber())
      return fail(std::string{"field "} + name + " must be a number or null", name);
    double d = v->GetDouble();
    if (d < lo || d > hi) {
      auto range = std::isinf(hi) ? " must be >= " + num_text(lo)
                                  : " must be between " + num_text(lo) + " and " + num_text(hi);
      return fail(std::string{"field "} + name + range, name);
    }
    out = d;
  }

  template <class Int>
  void optional_int(const char* name, Int& out, int64_t lo, int64_t hi) {
    auto v = present(name);
    if (!v)
      return;
    if (!is_integer(*v) || v->GetDouble() < static_cast<double>(lo)
        || v->GetDouble() > static_cast<double>(hi))
      return fail(std::string{"field "} + name + " must be an integer between "
                    + std::to_string(lo) + " and " + std::to_string(hi),
                  name);
    out = static_cast<Int>(v->GetDouble());
  }

  void optional_strings(const char* name, std::vector<std::string>& out) {
    if (auto v = present(name); v && !read_strings(*v, out))
      fail(std::string{"field "} + name + " must be an array of strings", name);
  }

  void optional_attributes(const char* name, attributes& out) {
    if (auto v = present(name); v && !read_attributes(*v, out))
      fail(std::string{"field "} + name
             + " must be an object of scalar values (string, number, boolean or null)",
           name);
  }

  /// A member that is there and not null, once no problem was found yet.
  const Value* present(const char* name) const {
    if (!err.empty())
      return nullptr;
    auto v = find(name);
    return v == nullptr || v->IsNull() ? nullptr : v;
  }

private:
  const Value* find(const char* name) const {
    auto it = obj_.FindMember(name);
    return it == obj_.MemberEnd() ? nullptr : &it->value;
  }

  const Value& obj_;
};

/// The members of a job spec. `core` makes name, version and package_type
/// required (requests); persistence reads them as optional.
void read_spec(reader& r, job_spec& s, bool core, bool server_fields) {
  if (core) {
    r.required_string("name", s.name);
    r.required_string("version", s.version);
    r.required_string("package_type", s.package_type);
  } else {
    r.optional_string("name", s.name);
    r.optional_string("version", s.version);
    r.optional_string("package_type", s.package_type);
  }
  r.optional_strings("target_nodes", s.target_nodes);
  r.optional_strings("packages", s.packages);
  r.optional_string("artifact", s.artifact);
  r.optional_string("target_path", s.target_path);
  r.optional_string("mode", s.mode);
  if (server_fields) {  // set by the server, never taken from an operator's request
    r.optional_string("artifact_sha256", s.artifact_sha256);
    r.optional_int("artifact_size", s.artifact_size, 0, INT32_MAX);
  }
  r.optional_string("script", s.script);
  r.optional_string("description", s.description);
  r.optional_int("timeout_seconds", s.timeout_seconds, core ? 1 : 0, 86400);
}

bool valid_ip_literal(const std::string& ip) {
  unsigned char buf[sizeof(in6_addr)];
  if (inet_pton(AF_INET, ip.c_str(), buf) == 1)
    return true;
  // An IPv6 literal may carry a zone ("fe80::1%eth0").
  auto zone = ip.find('%');
  if (zone != std::string::npos && zone + 1 == ip.size())
    return false;
  return inet_pton(AF_INET6, ip.substr(0, zone).c_str(), buf) == 1;
}

template <class T>
decoded<T> failed(problem p) {
  decoded<T> d;
  d.err = std::move(p);
  return d;
}

}  // namespace

decoded<health_report> decode_health_report(std::string_view body) {
  Document doc;
  decoded<health_report> d;
  if (!parse_object(body, doc, d.err))
    return d;
  reader r{doc};
  auto& h = d.value;
  if (!r.has("node_id") && r.has("node id"))
    r.fail("missing field: node_id (found \"node id\"; the field is spelled node_id)", "node_id");
  r.required_node_id(h.node_id);
  r.optional_string("timestamp", h.timestamp);
  r.optional_bool("overall_healthy", h.overall_healthy);
  r.optional_number("cpu_percent", h.cpu_percent, 0, 100);
  r.optional_number("memory_percent", h.memory_percent, 0, 100);
  r.optional_number("disk_percent", h.disk_percent, 0, 100);
  r.optional_number("temperature", h.temperature, -273, 1000);
  r.optional_number("uptime_seconds", h.uptime_seconds, 0, HUGE_VAL);
  if (auto v = r.present("services_status")) {
    bool good = v->IsObject();
    if (good) {
      h.services_status.reserve(v->MemberCount());
      for (auto& m : v->GetObject()) {
        if (!m.value.IsBool()) {
          good = false;
          break;
        }
        h.services_status.emplace_back(str(m.name), m.value.GetBool());
      }
    }
    if (!good)
      r.fail("field services_status must be an object whose values are booleans",
             "services_status");
  }
  r.optional_strings("error_messages", h.error_messages);
  d.err = r.err;
  return d;
}

decoded<node_registration> decode_node_registration(std::string_view body,
                                                    const std::string& source_address) {
  Document doc;
  decoded<node_registration> d;
  if (!parse_object(body, doc, d.err))
    return d;
  reader r{doc};
  auto& n = d.value;
  r.required_node_id(n.node_id);
  r.optional_string("hostname", n.hostname);
  r.optional_string("ip_address", n.ip_address);
  if (r.ok() && n.ip_address.empty())
    n.ip_address = source_address;
  else if (r.ok() && !valid_ip_literal(n.ip_address))
    r.fail("field ip_address must be an IPv4 or IPv6 address", "ip_address");
  r.optional_int("port", n.port, 1, 65535);
  r.optional_strings("services", n.services);
  r.optional_strings("drivers", n.drivers);
  r.optional_attributes("system_info", n.system_info);
  r.optional_string("status", n.reported_status);
  d.err = r.err;
  return d;
}

decoded<updates_request> decode_updates_request(std::string_view body) {
  Document doc;
  decoded<updates_request> d;
  if (!parse_object(body, doc, d.err))
    return d;
  reader r{doc};
  auto& q = d.value;
  std::string action = "create";
  r.optional_string("action", action);
  if (!r.ok()) {
    d.err = r.err;
    return d;
  }
  if (action == "create") {
    q.action = updates_action::create;
    q.spec.target_nodes = {"all"};
    read_spec(r, q.spec, true, false);
    if (r.ok())
      r.err = validate_job_spec(q.spec);
  } else if (action == "install" || action == "status" || action == "cancel"
             || action == "delete") {
    q.action = action == "install"  ? updates_action::install
               : action == "status" ? updates_action::status
               : action == "cancel" ? updates_action::cancel
                                    : updates_action::remove;
    r.required_nonempty("job_id", q.job_id);
  } else if (action == "report") {
    q.action = updates_action::report;
    auto& rep = q.report;
    r.required_nonempty("job_id", rep.job_id);
    r.required_node_id(rep.node_id);
    std::string status;
    r.required_string("status", status);
    if (r.ok() && !from_string(status, rep.state))
      r.fail("field status must be one of pending, notified, downloading, downloaded, "
             "installing, succeeded, failed, timed_out, cancelled, skipped",
             "status");
    r.optional_int("progress", rep.progress, 0, 100);
    r.optional_int("result", rep.result, 0, 10);
    r.optional_string("error_message", rep.error_message);
  } else {
    r.fail("unknown action: " + action
             + " (expected create, install, status, report, cancel, delete)",
           "action");
  }
  d.err = r.err;
  return d;
}

const char* to_string(system_action a) {
  switch (a) {
    case system_action::status: return "status";
    case system_action::restart: return "restart";
    case system_action::shutdown: return "shutdown";
  }
  return "unknown";
}

decoded<system_action> decode_system_request(std::string_view body) {
  Document doc;
  decoded<system_action> d;
  if (!parse_object(body, doc, d.err))
    return d;
  reader r{doc};
  std::string action;
  r.required_string("action", action);
  if (r.ok()) {
    if (action == "status")
      d.value = system_action::status;
    else if (action == "restart")
      d.value = system_action::restart;
    else if (action == "shutdown")
      d.value = system_action::shutdown;
    else
      r.fail("unknown action: " + action + " (expected status, restart, shutdown)", "action");
  }
  d.err = r.err;
  return d;
}

decoded<update_notification> decode_update_notification(std::string_view body) {
  Document doc;
  decoded<update_notification> d;
  if (!parse_object(body, doc, d.err))
    return d;
  reader r{doc};
  auto& n = d.value;
  r.required_nonempty("job_id", n.job_id);
  r.required_node_id(n.node_id);
  read_spec(r, n.spec, true, true);
  r.optional_string("server", n.server);
  if (r.ok()) {
    // The targets concern the server; an agent gets none or the server's own.
    auto spec = n.spec;
    if (spec.target_nodes.empty())
      spec.target_nodes = {"all"};
    r.err = validate_job_spec(spec);
  }
  d.err = r.err;
  return d;
}

decoded<job_spec> decode_job_spec(std::string_view json) {
  Document doc;
  decoded<job_spec> d;
  if (!parse_object(json, doc, d.err))
    return d;
  reader r{doc};
  read_spec(r, d.value, false, true);
  d.err = r.err;
  return d;
}

decoded<attributes> decode_attributes(std::string_view json) {
  Document doc;
  problem err;
  if (!parse(json, doc, err))
    return failed<attributes>(std::move(err));
  decoded<attributes> d;
  if (!read_attributes(doc, d.value))
    d.err = {"expected a JSON object of scalar values (string, number, boolean or null)", {}};
  return d;
}

decoded<std::vector<std::string>> decode_strings(std::string_view json) {
  Document doc;
  problem err;
  if (!parse(json, doc, err))
    return failed<std::vector<std::string>>(std::move(err));
  decoded<std::vector<std::string>> d;
  if (!read_strings(doc, d.value))
    d.err = {"expected a JSON array of strings", {}};
  return d;
}

}  // namespace coapfleet::model
