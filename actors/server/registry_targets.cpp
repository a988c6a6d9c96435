// The registry's part in targeting: each node's traits (labels, version
// inventory, arch and os), an operator's labels, an agent's inventory, and
// the job targets a trigger or a campaign resolves.
#include <algorithm>

#include "actors/replies.hpp"
#include "actors/server/registry_internal.hpp"
#include "common/log.hpp"
#include "model/json.hpp"
#include "model/rules.hpp"

namespace coapfleet::server::registry_detail {

namespace {

const model::node_traits no_traits{};

std::string pool_key(const model::node_traits& t) {
  std::string k = model::encode_string_map(t.labels);
  k += '\n';
  k += model::encode_string_map(t.operator_labels);
  k += '\n';
  k += model::encode_string_map(t.inventory);
  k += '\n';
  k += model::encode_strings({t.arch, t.os});  // JSON: no two keys alike
  return k;
}

std::string scalar_text(const model::attributes& a, const char* name) {
  for (auto& [k, v] : a)
    if (k == name)
      return v.kind == model::scalar::string_v ? v.text : std::string{};
  return {};
}

job_target target_of(registry_state& st, const node_entry& e, model::millis now) {
  return job_target{e.summary.node_id, e.ip_address, e.port,
                    model::liveness(e.summary.last_seen, now,
                                    st.cfg.liveness.stale_after.count(),
                                    st.cfg.liveness.offline_after.count()),
                    {}};
}

void sort_unique(std::vector<job_target>& out) {
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.node_id < b.node_id; });
  out.erase(std::unique(out.begin(), out.end(),
                        [](const auto& a, const auto& b) { return a.node_id == b.node_id; }),
            out.end());
}

/// Writes a node's traits; `answer` goes once they are durable.
template <class T>
caf::result<T> write_traits(self_ptr self, const std::string& id, T answer) {
  auto& e = self->state.nodes.find(id)->second;
  auto& t = traits_of(e);
  write_batch batch;
  batch.ops.emplace_back(model::put_node_traits{id, t.labels, t.inventory, t.operator_labels});
  auto rp = self->make_response_promise<T>();
  self->request(self->state.persistence, caf::infinite, atom::write::value, std::move(batch))
    .then([rp, answer](atom::ok) mutable { rp.deliver(std::move(answer)); },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

}  // namespace

const model::node_traits& traits_of(const node_entry& e) {
  return e.traits ? *e.traits : no_traits;
}

void set_traits(registry_state& st, node_entry& e, model::node_traits t) {
  auto old = std::move(e.traits);
  if (!t.empty()) {
    const std::shared_ptr<const model::node_traits>* found = nullptr;
    for (auto* slot : st.recent_traits)
      if (slot != nullptr && **slot == t) {
        found = slot;
        break;
      }
    if (found == nullptr) {
      auto& slot = st.trait_pool[pool_key(t)];
      if (!slot)
        slot = std::make_shared<const model::node_traits>(std::move(t));
      found = &slot;  // stable: an unordered_map moves no element
      st.recent_traits[st.recent_next++ % st.recent_traits.size()] = found;
    }
    e.traits = *found;
  }
  // The last node with the old traits lets them go (the pool holds one).
  if (old && old != e.traits && old.use_count() == 2) {
    auto at = st.trait_pool.find(pool_key(*old));
    if (at != st.trait_pool.end()) {
      for (auto& slot : st.recent_traits)
        if (slot == &at->second)
          slot = nullptr;
      st.trait_pool.erase(at);
    }
  }
}

model::node_traits registered_traits(model::node_registration& reg, const node_entry* had) {
  model::node_traits t;
  auto& before = had ? traits_of(*had) : no_traits;
  // The node names all its own labels; the operator's stay over them.
  t.operator_labels = before.operator_labels;
  t.labels = model::merge_labels(reg.labels, t.operator_labels);
  t.inventory = reg.inventory_given ? reg.inventory : before.inventory;
  t.arch = scalar_text(reg.system_info, "arch");
  t.os = scalar_text(reg.system_info, "os");
  reg.labels = t.labels;
  reg.inventory = t.inventory;
  return t;
}

namespace {

/// The targets of ids (["all"]: every node) into `out`; the unknown ids,
/// comma-separated.
std::string add_ids(registry_state& st, const std::vector<std::string>& ids,
                    std::vector<job_target>& out) {
  // Liveness as of this moment (the counts follow within a deadline bucket).
  auto now = st.cfg.liveness.now();
  if (ids.size() == 1 && ids[0] == "all") {
    out.reserve(st.nodes.size());
    for (auto& kv : st.nodes)
      out.push_back(target_of(st, kv.second, now));
    return {};
  }
  std::string unknown;
  for (auto& id : ids) {
    auto i = st.nodes.find(id);
    if (i == st.nodes.end()) {
      unknown += unknown.empty() ? "" : ", ";
      unknown += id;
    } else {
      out.push_back(target_of(st, i->second, now));
    }
  }
  return unknown;
}

caf::error unknown_targets(const std::string& unknown) {
  return make_api_error(api_errc::not_found, "unknown target nodes: " + unknown,
                        "target_nodes");
}

}  // namespace

caf::result<std::vector<job_target>> resolve_ids(self_ptr self,
                                                 const std::vector<std::string>& ids,
                                                 bool known_only) {
  std::vector<job_target> out;
  auto unknown = add_ids(self->state, ids, out);
  if (!unknown.empty() && !known_only)
    return unknown_targets(unknown);
  sort_unique(out);
  return out;
}

caf::result<std::vector<job_target>> resolve_spec(self_ptr self, const model::job_spec& spec) {
  if (spec.target_labels.empty())
    return resolve_ids(self, spec.target_nodes, false);
  auto& st = self->state;
  auto now = st.cfg.liveness.now();
  std::vector<job_target> out;
  bool all = spec.target_nodes.size() == 1 && spec.target_nodes[0] == "all";
  if (!all && !spec.target_nodes.empty()) {  // the named ones, which must exist
    auto unknown = add_ids(st, spec.target_nodes, out);
    if (!unknown.empty())
      return unknown_targets(unknown);
  }
  for (auto& kv : st.nodes)
    if (model::matches(spec.target_labels, traits_of(kv.second)))
      out.push_back(target_of(st, kv.second, now));
  sort_unique(out);
  return out;
}

caf::result<model::string_map> relabel(self_ptr self, const std::string& id,
                                       const model::string_map& change) {
  auto& st = self->state;
  auto i = st.nodes.find(id);
  if (i == st.nodes.end())
    return make_api_error(api_errc::not_found, "node not registered", "node_id", "node_id", id);
  auto& e = i->second;
  auto t = traits_of(e);
  auto before = t.labels.size();
  t.labels = model::merge_labels(t.labels, change);
  t.operator_labels = model::merge_labels(t.operator_labels, change, true);
  // Removals the operator made are kept (a registration must not bring the
  // label back), the oldest first to go when there are too many.
  for (auto i = t.operator_labels.begin();
       t.operator_labels.size() > 2 * model::max_labels && i != t.operator_labels.end();)
    i = i->second.empty() ? t.operator_labels.erase(i) : std::next(i);
  if (t.labels.size() > model::max_labels && t.labels.size() > before)
    return make_api_error(api_errc::bad_request,
                          "node " + id + " would have " + std::to_string(t.labels.size())
                            + " labels, at most " + std::to_string(model::max_labels)
                            + " are allowed",
                          "labels");
  auto labels = t.labels;
  // In memory at once: what comes next (a registration, another change) is
  // laid over this, in the order the store gets them.
  set_traits(st, e, std::move(t));
  note_change(st, id);
  announce(self, resource_kind::nodes, urgency::control);
  CF_INFO("registry", "node ", id, " labels now ", model::encode_string_map(labels));
  // A running dynamic campaign may now match it.
  if (e.summary.status == model::node_status::online)
    joined(self, id, e);
  return write_traits(self, id, std::move(labels));
}

caf::result<atom::ok> take_inventory(self_ptr self, const std::string& id,
                                     model::string_map inventory) {
  auto& st = self->state;
  auto i = st.nodes.find(id);
  if (i == st.nodes.end())
    return make_api_error(api_errc::not_found, "node not registered", "node_id", "node_id", id);
  auto t = traits_of(i->second);
  if (t.inventory == inventory)
    return atom::ok::value;
  t.inventory = std::move(inventory);
  set_traits(st, i->second, std::move(t));
  note_change(st, id);
  announce(self, resource_kind::nodes, urgency::control);
  // A dynamic campaign for inventory.<name> may now match it.
  if (i->second.summary.status == model::node_status::online)
    joined(self, id, i->second);
  return write_traits(self, id, atom::ok::value);
}

}  // namespace coapfleet::server::registry_detail
