// Targeting by labels and what nodes run: label rules, merging, matching a
// job's target_labels, and the version inventory's entries of a job.
// Pure C++: no I/O, no CAF.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "model/types.hpp"

namespace coapfleet::model {

/// What a job's targets are matched against, beside the node's id.
struct node_traits {
  string_map labels;  ///< in effect: the node's own with the operator's laid over them
  /// An operator's labels, which outlive the node's registrations; an empty
  /// value is a label the operator removed.
  string_map operator_labels;
  string_map inventory;
  std::string arch;  ///< system_info.arch (empty when not told)
  std::string os;    ///< system_info.os
  bool empty() const {
    return labels.empty() && operator_labels.empty() && inventory.empty() && arch.empty()
           && os.empty();
  }
  friend bool operator==(const node_traits& a, const node_traits& b) {
    return a.labels == b.labels && a.operator_labels == b.operator_labels
           && a.inventory == b.inventory && a.arch == b.arch && a.os == b.os;
  }
};
template <class F> auto inspect(F& f, node_traits& x) {
  return f(x.labels, x.operator_labels, x.inventory, x.arch, x.os);
}

constexpr size_t max_labels = 32;
constexpr size_t max_inventory = 256;
constexpr const char* label_key_rule =
  "1..63 characters of A-Z a-z 0-9 . _ - /, not starting with system_info. or inventory.";
constexpr const char* label_value_rule = "1..128 printable characters";
constexpr const char* inventory_name_rule = "1..128 printable characters";
constexpr const char* version_rule = "1..64 printable characters";

bool valid_label_key(std::string_view k);
bool valid_label_value(std::string_view v);  ///< printable ASCII or UTF-8, no control
bool valid_label_text(std::string_view v);   ///< the same, not empty (a label a node has)
bool valid_inventory_name(std::string_view k);
bool valid_version(std::string_view v);

/// KEY=VALUE command-line labels (an agent's --label) as a label map;
/// false with `error` naming the one at fault (or a repeated key, or too many).
bool parse_labels(const std::vector<std::string>& args, string_map& out, std::string& error);

/// Sorts by name; false when a name repeats.
bool normalize(string_map& m);

/// The value of `name`, or nullptr.
const std::string* find(const string_map& m, std::string_view name);

/// `have` with `change` laid over it: a name in `change` takes its value;
/// an empty value removes the name (or, with `keep_empty`, is kept as an
/// empty value). Both sorted; the result is sorted.
string_map merge_labels(const string_map& have, const string_map& change,
                        bool keep_empty = false);

/// True when every entry of `want` matches: a label key by the node's label,
/// "system_info.arch"/"system_info.os" by what it registered, and
/// "inventory.<name>" by the version it runs.
bool matches(const string_map& want, const node_traits& t);

/// Whether a job of `spec` targets node `id`: listed in target_nodes, or
/// matching target_labels (with target_nodes ["all"], or none, the labels
/// decide; without target_labels, ["all"] takes every node).
bool targeted(const job_spec& spec, const std::string& id, const node_traits& t);

/// A target_labels key is a label key, system_info.arch, system_info.os or
/// inventory.<name>.
bool valid_target_key(std::string_view k);

/// The inventory entries a successful install of `spec` gives: the job's
/// name → its version, and for pip and apt jobs each pinned package
/// ("pip:aiocoap" → "0.4.7" from "aiocoap==0.4.7", "apt:curl" → "7.88" from
/// "curl=7.88").
string_map inventory_of(const job_spec& spec);

/// Whether `inventory` names the version of `spec` (success means the node
/// runs it); `why` tells what it names instead when not.
bool runs_version(const string_map& inventory, const job_spec& spec, std::string& why);

/// `into` with `add` laid over it (names sorted; add wins).
void merge_inventory(string_map& into, const string_map& add);

}  // namespace coapfleet::model
