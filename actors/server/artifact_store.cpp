#include "actors/server/artifact_store.hpp"

#include "actors/server/artifact_store_internal.hpp"
#include "common/clock.hpp"
#include "common/log.hpp"
#include "common/sha256.hpp"
#include "model/json.hpp"

namespace coapfleet::server {

namespace artifacts_internal {

namespace {

using model::valid_artifact_name;

caf::error not_found(const std::string& name) {
  return make_api_error(api_errc::not_found, "artifact not found", "artifact", "name", name);
}

}  // namespace

void publish(self_ptr self, const artifact_info& a) {
  auto& st = self->state;
  std::string err;
  auto m = mapped_file::open(st.artifact_path(a.name), err);
  if (!m) {
    CF_ERROR("artifact-store", "cannot map ", a.name, ": ", err);
    return;
  }
  st.mapped[a.name] = m;
  self->send(st.transport, atom::artifact::value, artifact_blob{a, m});
}

bool keep_file(self_ptr self, const artifact_info& a, std::string_view body,
               std::string& error) {
  auto& st = self->state;
  // On failure the file is the version before (written atomically) and is
  // still served as that; in a cluster the next refresh tries again.
  if (!forget_metadata(st, a.name, error) || !st.write(st.artifact_path(a.name), body, error)
      || !st.write(st.meta_path(a.name), model::encode_artifact_meta(a), error))
    return false;
  st.index[a.name] = a;
  publish(self, a);
  self->send(st.transport, atom::changed::value, resource{resource_kind::artifacts, {}},
             urgency::control);
  return true;
}

bool drop_file(self_ptr self, const std::string& name, std::string& error) {
  auto& st = self->state;
  if (!forget_metadata(st, name, error)
      || (::unlink(st.artifact_path(name).c_str()) != 0 && errno != ENOENT)) {
    if (error.empty())
      error = "cannot remove " + st.artifact_path(name) + ": " + std::strerror(errno);
    return false;
  }
  st.index.erase(name);
  st.mapped.erase(name);  // a transfer in flight keeps its own mapping
  self->send(st.transport, atom::remove::value, name);
  self->send(st.transport, atom::changed::value, resource{resource_kind::artifacts, {}},
             urgency::control);
  return true;
}

}  // namespace artifacts_internal

using namespace artifacts_internal;

namespace {

/// 5.03 for a client; why (the store's own message) goes to the log only.
caf::error unavailable(self_ptr self, const std::string& what) {
  auto* t = self->state.table.get();
  CF_WARN("artifact-store", what, ": ", t ? t->last_error() : std::string("no shared store"));
  return make_api_error(api_errc::unavailable, what + "; retry");
}

/// The description of `name` for a job or a request: the shared store's
/// (copied here if this member's file is not that version), else this
/// member's when the store does not answer.
caf::expected<artifact_info> describe(self_ptr self, const std::string& name) {
  auto& st = self->state;
  auto local = st.index.find(name);
  if (shared(st)) {
    artifact_info a;
    bool found = false;
    auto* t = table_of(self);
    if (answered(self, t && t->find(name, a, found))) {
      if (!found)
        return not_found(name);
      if (local == st.index.end() || local->second.sha256 != a.sha256)
        copy_from_store(self, a);
      return a;
    }
  }
  if (local == st.index.end())
    return not_found(name);
  return local->second;
}

}  // namespace

artifact_store_actor spawn_artifact_store(caf::actor_system& sys, artifact_store_config cfg,
                                          transport_actor transport) {
  auto fn = [](self_ptr self, artifact_store_config cfg,
               transport_actor transport) -> artifact_store_actor::behavior_type {
    auto& st = self->state;
    st.cfg = std::move(cfg);
    st.transport = std::move(transport);
    if (::mkdir(st.cfg.directory.c_str(), 0755) != 0 && errno != EEXIST)
      CF_ERROR("artifact-store", "cannot create ", st.cfg.directory, ": ", std::strerror(errno));
    scan(self);
    if (shared(st)) {
      sync_with_store(self);
      st.next_refresh_at = now_millis() + st.cfg.refresh.count();
      self->delayed_send(self, st.cfg.refresh, atom::refresh::value);
    }
    for (auto& kv : st.index)
      publish(self, kv.second);
    CF_INFO("artifact-store", st.index.size(), " artifacts in ", st.cfg.directory,
            shared(st) ? ", copies of the shared store's" : "");
    return {
      [self](atom::upload, artifact_upload& up) -> caf::result<artifact_info> {
        auto& st = self->state;
        if (!valid_artifact_name(up.name))
          return make_api_error(api_errc::bad_request,
                                std::string("artifact name must be ") + model::artifact_name_rule,
                                "name");
        artifact_info a;
        a.name = up.name;
        a.size = static_cast<int64_t>(up.body.size());
        a.sha256 = common::sha256_hex(up.body);
        a.uploaded_at = now_millis();
        // Jobs not yet finished verify every block against the version they
        // pinned: other content now would fail each of their nodes.
        std::string blocking;
        for (auto& pin : up.pins)
          if (pin.sha256 != a.sha256)
            blocking += (blocking.empty() ? "" : ",") + pin.job_id;
        if (!blocking.empty()) {
          CF_INFO("artifact-store", "refused to replace ", a.name, ": named by unfinished job(s) ",
                  blocking);
          return make_api_error(api_errc::conflict,
                                "artifact " + a.name + " is named by unfinished job(s) with "
                                "another version; replace it once they have finished, or "
                                "cancel or delete them",
                                "name", "jobs", blocking);
        }
        // In a cluster, acknowledged means in the shared store: every
        // member copies it from there.
        auto* t = shared(st) ? table_of(self) : nullptr;
        if (shared(st) && !answered(self, t && t->put(a, up.body)))
          return unavailable(self, "the shared store did not take artifact " + a.name);
        std::string err;
        if (!keep_file(self, a, up.body, err)) {
          CF_ERROR("artifact-store", err);
          if (!shared(st))
            return make_api_error(api_errc::internal, "cannot store artifact: " + err);
          // Stored where it counts; this member copies it again at its
          // next refresh.
        }
        CF_INFO("artifact-store", "stored ", a.name, " size=", a.size, " sha256=", a.sha256,
                shared(st) ? " in the shared store" : "");
        return a;
      },
      [self](atom::get, const std::string& name) -> caf::result<artifact_blob> {
        auto& st = self->state;
        auto i = st.index.find(name);
        if (i == st.index.end() && shared(st)) {
          // Uploaded through another member since the last refresh.
          auto a = describe(self, name);
          if (!a)
            return a.error();
          i = st.index.find(name);
          if (i == st.index.end())
            return make_api_error(api_errc::unavailable,
                                  "artifact " + name + " is not copied to this member yet; retry",
                                  "artifact", "name", name);
        }
        if (i == st.index.end())
          return not_found(name);
        auto& m = st.mapped[name];
        if (!m) {
          std::string err;
          m = mapped_file::open(st.artifact_path(name), err);
          if (!m) {
            st.mapped.erase(name);
            return make_api_error(api_errc::internal, "cannot read artifact: " + err);
          }
        }
        return artifact_blob{i->second, m};
      },
      [self](atom::info, const std::string& name) -> caf::result<artifact_info> {
        auto a = describe(self, name);
        if (!a)
          return a.error();
        return std::move(*a);
      },
      [self](atom::remove, const std::string& name) -> caf::result<atom::ok> {
        auto& st = self->state;
        bool here = st.index.count(name) > 0;
        if (shared(st)) {
          bool found = false;
          auto* t = table_of(self);
          if (!answered(self, t && t->remove(name, now_millis(), found)))
            return unavailable(self, "the shared store did not delete artifact " + name);
          if (!found) {
            // Deleted through another member: this member's copy goes too.
            std::string err;
            if (here && !drop_file(self, name, err))
              CF_ERROR("artifact-store", err);
            return not_found(name);
          }
        } else if (!here) {
          return not_found(name);
        }
        std::string err;
        if (here && !drop_file(self, name, err)) {
          CF_ERROR("artifact-store", err);
          if (!shared(st))
            return make_api_error(api_errc::internal, "cannot delete artifact: " + err);
        }
        CF_INFO("artifact-store", "deleted ", name, shared(st) ? " from the shared store" : "");
        return atom::ok::value;
      },
      [self](atom::list) -> std::vector<artifact_info> {
        // The shared store's list (this member's when it does not answer).
        if (shared(self->state))
          sync_with_store(self);
        std::vector<artifact_info> out;
        for (auto& kv : self->state.index)
          out.push_back(kv.second);
        return out;
      },
      [self](atom::refresh) {
        auto& st = self->state;
        if (!shared(st))
          return;
        sync_with_store(self);
        // One timer: a refresh asked for in between does not start another.
        auto now = now_millis();
        if (now >= st.next_refresh_at) {
          st.next_refresh_at = now + st.cfg.refresh.count();
          self->delayed_send(self, st.cfg.refresh, atom::refresh::value);
        }
      },
    };
  };
  if (cfg.detached)
    return sys.spawn<caf::detached>(fn, std::move(cfg), std::move(transport));
  return sys.spawn(fn, std::move(cfg), std::move(transport));
}

}  // namespace coapfleet::server
