// Decoders of the wire API's request bodies (RapidJSON DOM). Each checks
// presence and types and names the first field at fault; value rules of job
// specs live in json_validate.cpp.
// This file: health, nodes and the shared value lists; jobs, updates and the
// system are in json_decode_jobs.cpp.
#include <arpa/inet.h>

#include <cstring>
#include <netinet/in.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>

#include "model/json.hpp"
#include "model/json_read.hpp"
#include "model/targets.hpp"

namespace coapfleet::model {

using namespace json_read;

namespace {

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

/// Why `ip` (a valid literal) cannot be where a node is notified, or null:
/// never a multicast, broadcast or unspecified address (a notification
/// must reach one node, not a network).
const char* not_unicast(const std::string& ip) {
  unsigned char b[sizeof(in6_addr)];
  if (inet_pton(AF_INET, ip.c_str(), b) == 1) {
    if (b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0)
      return "unspecified";
    if (b[0] >= 224 && b[0] <= 239)
      return "multicast";
    if (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255)
      return "broadcast";
    return nullptr;
  }
  auto zone = ip.find('%');
  if (inet_pton(AF_INET6, ip.substr(0, zone).c_str(), b) != 1)
    return nullptr;
  static const unsigned char zero[16] = {};
  if (std::memcmp(b, zero, 16) == 0)
    return "unspecified";
  if (b[0] == 0xff)
    return "multicast";
  // An IPv4-mapped address (::ffff:a.b.c.d) is judged as its IPv4 form.
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(b, mapped, 12) == 0) {
    char v4[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, b + 12, v4, sizeof v4);
    return not_unicast(v4);
  }
  return nullptr;
}

}  // namespace

decoded<health_report> decode_health_report(std::string_view body, json_source from) {
  Document doc;
  decoded<health_report> d;
  if (!parse_object(body, doc, d.err, from))
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

namespace {

void read_registration(reader& r, node_registration& n, const std::string& source_address) {
  r.required_node_id(n.node_id);
  r.optional_string("hostname", n.hostname);
  r.optional_string("ip_address", n.ip_address);
  if (r.ok() && n.ip_address.empty())
    n.ip_address = source_address;
  else if (r.ok() && !valid_ip_literal(n.ip_address))
    r.fail("field ip_address must be an IPv4 or IPv6 address", "ip_address");
  else if (const char* what = r.ok() ? not_unicast(n.ip_address) : nullptr)
    r.fail(std::string("field ip_address must be a unicast address, not ") + what + " ("
             + n.ip_address + ")",
           "ip_address");
  r.optional_int("port", n.port, 1, 65535);
  r.optional_strings("services", n.services);
  r.optional_strings("drivers", n.drivers);
  r.optional_attributes("system_info", n.system_info);
  r.optional_string("status", n.reported_status);
  r.optional_string_map("labels", n.labels, valid_label_key, label_key_rule, valid_label_text,
                        label_value_rule, max_labels);
  n.inventory_given = r.optional_string_map("inventory", n.inventory, valid_inventory_name,
                                            inventory_name_rule, valid_version, version_rule,
                                            max_inventory);
}

}  // namespace

decoded<node_registration> decode_node_registration(std::string_view body,
                                                    const std::string& source_address) {
  Document doc;
  decoded<node_registration> d;
  if (!parse_object(body, doc, d.err))
    return d;
  reader r{doc};
  read_registration(r, d.value, source_address);
  d.err = r.err;
  return d;
}

decoded<nodes_request> decode_nodes_request(std::string_view body,
                                            const std::string& source_address) {
  Document doc;
  decoded<nodes_request> d;
  if (!parse_object(body, doc, d.err))
    return d;
  reader r{doc};
  auto& q = d.value;
  std::string action = "register";
  r.optional_string("action", action);
  if (r.ok() && action == "label") {
    q.label = true;
    r.required_node_id(q.node_id);
    if (r.ok() && !r.optional_string_map("labels", q.labels, valid_label_key, label_key_rule,
                                         valid_label_value, label_value_rule, max_labels, true)
        && r.ok())
      r.fail("missing field: labels (an object: {\"site\": \"berlin\"}; null removes a label)",
             "labels");
  } else if (r.ok() && action == "register") {
    read_registration(r, q.reg, source_address);
  } else if (r.ok()) {
    r.fail("unknown action: " + action + " (expected register or label)", "action");
  }
  d.err = r.err;
  return d;
}

decoded<attributes> decode_attributes(std::string_view json) {
  Document doc;
  problem err;
  if (!parse(json, doc, err, json_source::store))
    return failed<attributes>(std::move(err));
  decoded<attributes> d;
  if (!read_attributes(doc, d.value))
    d.err = {"expected a JSON object of scalar values (string, number, boolean or null)", {}};
  return d;
}

decoded<string_map> decode_string_map(std::string_view json) {
  Document doc;
  problem err;
  decoded<string_map> d;
  if (!parse(json, doc, err, json_source::store) || !doc.IsObject()) {
    d.err = err.empty() ? problem{"expected a JSON object of strings", {}} : std::move(err);
    return d;
  }
  for (auto& m : doc.GetObject()) {
    if (!m.value.IsString()) {
      d.err = {"expected a JSON object of strings", {}};
      return d;
    }
    d.value.emplace_back(str(m.name), str(m.value));
  }
  normalize(d.value);
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
