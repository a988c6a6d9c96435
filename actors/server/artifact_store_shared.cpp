// The artifact store in a cluster: this member's files are copies of the
// artifacts in the store the members share (store/artifacts.hpp).
#include <algorithm>
#include <set>

#include "actors/server/artifact_store_internal.hpp"
#include "common/clock.hpp"
#include "common/log.hpp"
#include "common/sha256.hpp"

namespace coapfleet::server::artifacts_internal {

namespace {

/// How long the timer's refreshes leave a store that did not answer alone.
constexpr model::millis store_retry_ms = 5000;

/// Tries again after a failure here: from 1 s, doubled, at most 5 min.
constexpr model::millis first_wait_ms = 1000, longest_wait_ms = 300000;

/// Whether `name` at `version` failed here and waits before it is tried again.
bool waiting(const artifact_store_state& st, const std::string& name,
             const std::string& version) {
  auto f = st.failed.find(name);
  return f != st.failed.end() && f->second.version == version
         && now_millis() < f->second.next_try;
}

/// Notes a failure to bring `name` at `version` in step here; logged the
/// first time only.
void note_failure(self_ptr self, const std::string& name, const std::string& version,
                  const std::string& what) {
  auto& f = self->state.failed[name];
  if (f.version != version || f.wait == 0) {
    CF_ERROR("artifact-store", what, " (tried again, from ", first_wait_ms / 1000,
             " s to every ", longest_wait_ms / 60000, " min, not logged again)");
    f.version = version;
    f.wait = first_wait_ms;
  } else {
    f.wait = std::min(f.wait * 2, longest_wait_ms);
  }
  f.next_try = now_millis() + f.wait;
}

/// A file of this member that the shared store does not list: deleted
/// there (dropped here), or never there (added to it, as it is now).
void settle_file_not_listed(self_ptr self, artifact_table& t, const artifact_info& listed) {
  auto& st = self->state;
  bool ever = false;
  std::string err;
  if (waiting(st, listed.name, listed.sha256) || !answered(self, t.known(listed.name, ever)))
    return;
  if (ever) {
    if (drop_file(self, listed.name, err))
      CF_INFO("artifact-store", "dropped ", listed.name, ": deleted from the shared store");
    else
      note_failure(self, listed.name, listed.sha256, "cannot drop " + listed.name + ": " + err);
    return;
  }
  auto m = mapped_file::open(st.artifact_path(listed.name), err);
  if (!m) {
    note_failure(self, listed.name, listed.sha256, "cannot read " + listed.name + ": " + err);
    return;
  }
  // Measured again: the metadata may describe a version before the file's.
  std::string_view body(reinterpret_cast<const char*>(m->data()), m->size());
  artifact_info a = listed;
  a.size = static_cast<int64_t>(body.size());
  a.sha256 = common::sha256_hex(body);
  bool added = false;
  if (!answered(self, t.add_if_new(a, body, added)))
    return;
  if (added)
    CF_INFO("artifact-store", "added ", a.name, " to the shared store (size=", a.size,
            " sha256=", a.sha256, "), from ", st.cfg.directory);
  else
    CF_WARN("artifact-store", "the shared store has its own ", a.name,
            ": this member's file is replaced by it");
}

}  // namespace

artifact_table* table_of(self_ptr self) {
  auto& st = self->state;
  if (!st.table) {
    std::string err;
    st.table = artifact_table::open(st.cfg.shared_store, err);
    if (!st.table) {
      if (st.store_answered)
        CF_ERROR("artifact-store", "cannot open the shared store: ", err);
      st.store_answered = false;
      st.store_retry_at = now_millis() + store_retry_ms;
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
  if (!ok)
    st.store_retry_at = now_millis() + store_retry_ms;
  return ok;
}

bool copy_from_store(self_ptr self, const artifact_info& a) {
  auto& st = self->state;
  if (!model::valid_artifact_name(a.name)) {
    // Never a path outside the directory, whatever a row of the store says.
    if (!waiting(st, a.name, a.sha256))
      note_failure(self, a.name, a.sha256,
                   "the shared store names an artifact \"" + a.name + "\": not a valid name");
    return false;
  }
  if (waiting(st, a.name, a.sha256))
    return false;
  auto* t = table_of(self);
  std::string body, err;
  if (!t)
    return false;
  if (!t->read(a, body)) {
    if (!t->content_mismatch())
      answered(self, false);
    else  // replaced since it was listed: the next refresh copies the new version
      CF_DEBUG("artifact-store", t->last_error());
    return false;
  }
  answered(self, true);
  if (!keep_file(self, a, body, err)) {
    note_failure(self, a.name, a.sha256,
                 "cannot copy " + a.name + " from the shared store: " + err);
    return false;
  }
  st.failed.erase(a.name);
  CF_INFO("artifact-store", "copied ", a.name, " from the shared store: size=", a.size,
          " sha256=", a.sha256);
  return true;
}

bool sync_with_store(self_ptr self) {
  auto& st = self->state;
  if (!st.store_answered && now_millis() < st.store_retry_at)
    return false;
  auto* t = table_of(self);
  std::vector<artifact_info> listed;
  if (!t || !answered(self, t->list(listed)))
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
