// The artifact store in a cluster: this member's files are copies of the
// artifacts in the store the members share (store/artifacts.hpp).
#include <set>

#include "actors/server/artifact_store_internal.hpp"
#include "common/log.hpp"

namespace coapfleet::server::artifacts_internal {

artifact_table* table_of(self_ptr self) {
  auto& st = self->state;
  if (!st.table) {
    std::string err;
    st.table = artifact_table::open(st.cfg.shared_store, err);
    if (!st.table) {
      if (st.store_answered)
        CF_ERROR("artifact-store", "cannot open the shared store: ", err);
      st.store_answered = false;
    }
  }
  return st.table.get();
}

bool answered(self_ptr self, bool ok) {
  auto& st = self->state;
  if (ok && !st.store_answered)
    CF_INFO("artifact-store", "the shared store answers again");
  else if (!ok && st.store_answered && st.table)
    CF_WARN("artifact-store", "the shared store did not answer: ", st.table->last_error(),
            " (serving this member's copies)");
  st.store_answered = ok;
  return ok;
}

bool copy_from_store(self_ptr self, const artifact_info& a) {
  auto* t = table_of(self);
  std::string body, err;
  if (!answered(self, t && t->read(a, body))) {
    // Replaced since `a` was read (the next refresh copies the new
    // version), or the store is away.
    return false;
  }
  if (!keep_file(self, a, body, err)) {
    CF_ERROR("artifact-store", "cannot copy ", a.name, " from the shared store: ", err);
    return false;
  }
  CF_INFO("artifact-store", "copied ", a.name, " from the shared store: size=", a.size,
          " sha256=", a.sha256);
  return true;
}

namespace {

/// A file of this member that the shared store does not list: deleted
/// there (dropped here), or never there (added to it).
void settle_file_not_listed(self_ptr self, artifact_table& t, const artifact_info& a) {
  auto& st = self->state;
  bool ever = false;
  std::string err;
  if (!answered(self, t.known(a.name, ever)))
    return;
  if (ever) {
    if (drop_file(self, a.name, err))
      CF_INFO("artifact-store", "dropped ", a.name, ": deleted from the shared store");
    else
      CF_ERROR("artifact-store", err);
    return;
  }
  auto m = mapped_file::open(st.artifact_path(a.name), err);
  if (!m) {
    CF_ERROR("artifact-store", "cannot read ", a.name, ": ", err);
    return;
  }
  std::string_view body(reinterpret_cast<const char*>(m->data()), m->size());
  if (answered(self, t.put(a, body)))
    CF_INFO("artifact-store", "added ", a.name, " to the shared store (size=", a.size,
            " sha256=", a.sha256, "), from ", st.cfg.directory);
}

}  // namespace

bool sync_with_store(self_ptr self) {
  auto& st = self->state;
  auto* t = table_of(self);
  std::vector<artifact_info> listed;
  if (!answered(self, t && t->list(listed)))
    return false;
  std::set<std::string> names;
  for (auto& a : listed) {
    names.insert(a.name);
    auto here = st.index.find(a.name);
    if (here == st.index.end() || here->second.sha256 != a.sha256)
      copy_from_store(self, a);
  }
  std::vector<artifact_info> not_listed;
  for (auto& [name, a] : st.index)
    if (names.count(name) == 0)
      not_listed.push_back(a);
  for (auto& a : not_listed)
    settle_file_not_listed(self, *t, a);
  return st.store_answered;
}

}  // namespace coapfleet::server::artifacts_internal
