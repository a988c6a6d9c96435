#include "model/targets.hpp"

#include <algorithm>

namespace coapfleet::model {

namespace {

bool printable(std::string_view v) {
  for (unsigned char c : v)
    if (c < 0x20 || c == 0x7f)
      return false;
  return true;
}

bool less_name(const std::pair<std::string, std::string>& a,
               const std::pair<std::string, std::string>& b) {
  return a.first < b.first;
}

}  // namespace

bool valid_label_key(std::string_view k) {
  if (k.empty() || k.size() > 63)
    return false;
  // Reserved for targeting by what a node registered and runs.
  if (k.substr(0, 12) == "system_info." || k.substr(0, 10) == "inventory.")
    return false;
  for (char c : k)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.'
          || c == '_' || c == '-' || c == '/'))
      return false;
  return true;
}

bool valid_label_value(std::string_view v) { return v.size() <= 128 && printable(v); }
bool valid_label_text(std::string_view v) { return !v.empty() && valid_label_value(v); }

bool valid_inventory_name(std::string_view k) {
  return !k.empty() && k.size() <= 128 && printable(k);
}

bool valid_version(std::string_view v) { return !v.empty() && v.size() <= 64 && printable(v); }

bool valid_target_key(std::string_view k) {
  if (k == "system_info.arch" || k == "system_info.os")
    return true;
  constexpr std::string_view inv = "inventory.";
  if (k.substr(0, inv.size()) == inv)
    return valid_inventory_name(k.substr(inv.size()));
  return valid_label_key(k);
}

bool parse_labels(const std::vector<std::string>& args, string_map& out, std::string& error) {
  out.clear();
  for (auto& l : args) {
    auto eq = l.find('=');
    auto key = l.substr(0, eq);
    auto value = eq == std::string::npos ? std::string() : l.substr(eq + 1);
    if (eq == std::string::npos || !valid_label_key(key) || value.empty()
        || !valid_label_value(value)) {
      error = l + ": expected KEY=VALUE, KEY " + label_key_rule + ", VALUE " + label_value_rule;
      return false;
    }
    out.emplace_back(std::move(key), std::move(value));
  }
  if (!normalize(out) || out.size() > max_labels) {
    error = "each key once, at most " + std::to_string(max_labels) + " labels";
    return false;
  }
  return true;
}

bool normalize(string_map& m) {
  std::stable_sort(m.begin(), m.end(), less_name);
  return std::adjacent_find(m.begin(), m.end(),
                            [](const auto& a, const auto& b) { return a.first == b.first; })
         == m.end();
}

const std::string* find(const string_map& m, std::string_view name) {
  auto i = std::lower_bound(m.begin(), m.end(), name,
                            [](const auto& e, std::string_view n) { return e.first < n; });
  return i != m.end() && i->first == name ? &i->second : nullptr;
}

string_map merge_labels(const string_map& have, const string_map& change, bool keep_empty) {
  string_map out;
  out.reserve(have.size() + change.size());
  auto a = have.begin();
  auto b = change.begin();
  while (a != have.end() || b != change.end()) {
    if (b == change.end() || (a != have.end() && a->first < b->first)) {
      out.push_back(*a++);
    } else {
      if (a != have.end() && a->first == b->first)
        ++a;
      if (!b->second.empty() || keep_empty)
        out.push_back(*b);
      ++b;
    }
  }
  return out;
}

bool matches(const string_map& want, const node_traits& t) {
  constexpr std::string_view inv = "inventory.";
  for (auto& [key, value] : want) {
    std::string_view k = key;
    const std::string* have = nullptr;
    if (k == "system_info.arch")
      have = t.arch.empty() ? nullptr : &t.arch;
    else if (k == "system_info.os")
      have = t.os.empty() ? nullptr : &t.os;
    else if (k.substr(0, inv.size()) == inv)
      have = find(t.inventory, k.substr(inv.size()));
    else
      have = find(t.labels, k);
    if (have == nullptr || *have != value)
      return false;
  }
  return true;
}

bool targeted(const job_spec& spec, const std::string& id, const node_traits& t) {
  auto& nodes = spec.target_nodes;
  bool all = nodes.size() == 1 && nodes[0] == "all";
  if (spec.target_labels.empty())
    return all || std::find(nodes.begin(), nodes.end(), id) != nodes.end();
  if (!all && std::find(nodes.begin(), nodes.end(), id) != nodes.end())
    return true;
  return matches(spec.target_labels, t);
}

namespace {

/// "name==1.2" (pip) or "name=1.2" (apt): the name and the version; false
/// when it pins none.
bool pinned(const std::string& p, const char* sep, std::string& name, std::string& version) {
  auto at = p.find(sep);
  if (at == std::string::npos || at == 0)
    return false;
  name = p.substr(0, at);
  version = p.substr(at + std::char_traits<char>::length(sep));
  // pip's extras and markers ("x[y]==1; python_version<'3'") are left whole.
  if (auto semi = version.find(';'); semi != std::string::npos)
    version.erase(semi);
  while (!version.empty() && version.back() == ' ')
    version.pop_back();
  return valid_version(version) && valid_inventory_name(name);
}

}  // namespace

string_map inventory_of(const job_spec& spec) {
  string_map out;
  out.emplace_back(spec.name, spec.version);
  const char* sep = spec.package_type == "pip"   ? "=="
                    : spec.package_type == "apt" ? "="
                                                 : nullptr;
  if (sep != nullptr)
    for (auto& p : spec.packages) {
      std::string name, version;
      if (pinned(p, sep, name, version))
        out.emplace_back(spec.package_type + ":" + name, version);
    }
  normalize(out);
  out.erase(std::unique(out.begin(), out.end(),
                        [](const auto& a, const auto& b) { return a.first == b.first; }),
            out.end());
  return out;
}

bool runs_version(const string_map& inventory, const job_spec& spec, std::string& why) {
  auto have = find(inventory, spec.name);
  if (have != nullptr && *have == spec.version)
    return true;
  why = "the node's inventory names " + spec.name + " "
        + (have == nullptr ? std::string("not at all") : "at version " + *have) + ", not "
        + spec.version + ", after the install";
  return false;
}

void merge_inventory(string_map& into, const string_map& add) {
  string_map out;
  out.reserve(into.size() + add.size());
  std::merge(add.begin(), add.end(), into.begin(), into.end(), std::back_inserter(out),
             less_name);
  // add came first among equal names: keep the first of each name.
  out.erase(std::unique(out.begin(), out.end(),
                        [](const auto& a, const auto& b) { return a.first == b.first; }),
            out.end());
  into = std::move(out);
}

}  // namespace coapfleet::model
