#include "actors/server/keys.hpp"

#include <algorithm>
#include <memory>

#include "common/log.hpp"
#include "common/random.hpp"

namespace coapfleet::server {

namespace {

struct keys_state {
  static inline const char* name = "keys";
  keys_config cfg;
  persistence_actor persistence;
  transport_actor transport;
  bool loaded = false;           ///< the transport has a table
  uint64_t version = 0;          ///< the key version of the table it has
  model::millis next_expiry = 0; ///< the earliest expiry in that table (0: none)
  bool checking = false;         ///< a version check is on its way
};

using self_ptr = keys_actor::stateful_pointer<keys_state>;

/// Loads the keys valid now and hands them to the transport; then `done`
/// (also when the load failed: the next check tries again).
void reload(self_ptr self, std::function<void()> done = {}) {
  auto& st = self->state;
  auto now = st.cfg.now();
  self->request(st.persistence, st.cfg.request_timeout, atom::keys::value, atom::load::value, now)
    .then(
      [self, done](model::key_table& table) {
        auto& st = self->state;
        st.loaded = true;
        st.version = table.version;
        st.next_expiry = 0;
        for (auto& k : table.keys)
          if (k.expires_at != 0 && (st.next_expiry == 0 || k.expires_at < st.next_expiry))
            st.next_expiry = k.expires_at;
        CF_INFO("keys", table.keys.size(), " valid keys (version ", table.version, ")");
        self->send(st.transport, atom::keys::value, std::move(table));
        if (done)
          done();
      },
      [self, done](caf::error& err) {
        self->state.loaded = false;  // the next check loads again
        CF_WARN("keys", "cannot load the keys: ", caf::to_string(err));
        if (done)
          done();
      });
}

/// Every check interval: a new key version (a change by another process)
/// or the end of a grace period means a new table.
void check(self_ptr self) {
  auto& st = self->state;
  self->delayed_send(self, st.cfg.check_interval, atom::tick::value);
  if (st.checking)
    return;
  if (!st.loaded || (st.next_expiry != 0 && st.cfg.now() >= st.next_expiry))
    return reload(self);
  st.checking = true;
  self->request(st.persistence, st.cfg.request_timeout, atom::keys::value, atom::version::value)
    .then(
      [self](uint64_t v) {
        self->state.checking = false;
        if (v != self->state.version) {
          CF_DEBUG("keys", "key version ", self->state.version, " -> ", v);
          reload(self);
        }
      },
      [self](caf::error& err) {
        self->state.checking = false;
        CF_DEBUG("keys", "cannot read the key version: ", caf::to_string(err));
      });
}

std::string secret_of(self_ptr self) {
  auto& make = self->state.cfg.new_secret;
  return make ? make() : new_key_secret();
}

caf::error no_secret() {
  return make_api_error(api_errc::internal, "no random bytes for a new key (getrandom failed)");
}

}  // namespace

std::string new_key_secret() {
  return common::random_hex(model::key_bytes);
}

caf::error check_identity(const std::string& id) {
  if (model::valid_identity(id))
    return {};
  return make_api_error(api_errc::bad_request,
                        std::string{"field id must be "} + model::identity_rule, "id");
}

caf::error check_new_key(const std::string& id, model::role r) {
  if (auto err = check_identity(id))
    return err;
  if (!model::key_role(r))
    return make_api_error(api_errc::bad_request,
                          "field role must be one of node, operator, reader", "role");
  return {};
}

caf::error check_grace(int64_t seconds) {
  if (seconds >= 0 && seconds <= model::max_grace_seconds)
    return {};
  return make_api_error(api_errc::bad_request,
                        "field grace_seconds must be an integer between 0 and "
                          + std::to_string(model::max_grace_seconds),
                        "grace_seconds");
}

keys_actor spawn_keys(caf::actor_system& sys, keys_config cfg, persistence_actor persistence,
                      transport_actor transport) {
  auto fn = [](self_ptr self, keys_config cfg, persistence_actor persistence,
               transport_actor transport) -> keys_actor::behavior_type {
    auto& st = self->state;
    st.cfg = std::move(cfg);
    st.persistence = std::move(persistence);
    st.transport = std::move(transport);
    reload(self);
    self->delayed_send(self, st.cfg.check_interval, atom::tick::value);
    return {
      [self](atom::create, std::string& id, model::role r) -> caf::result<model::key_entry> {
        if (auto err = check_new_key(id, r))
          return err;
        auto& st = self->state;
        auto key = std::make_shared<model::key_entry>();
        key->id = std::move(id);
        key->r = r;
        key->secret = secret_of(self);
        key->created_at = st.cfg.now();
        if (key->secret.empty())
          return no_secret();
        auto rp = self->make_response_promise<model::key_entry>();
        self
          ->request(st.persistence, st.cfg.request_timeout, atom::keys::value,
                    atom::create::value, *key)
          .then(
            [self, rp, key](atom::ok) mutable {
              CF_INFO("keys", "added a key for ", key->id, " (", model::to_string(key->r), ")");
              reload(self, [rp, key]() mutable { rp.deliver(std::move(*key)); });
            },
            [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self](atom::list) -> caf::result<std::vector<model::key_info>> {
        auto& st = self->state;
        auto rp = self->make_response_promise<std::vector<model::key_info>>();
        self
          ->request(st.persistence, st.cfg.request_timeout, atom::keys::value, atom::list::value,
                    st.cfg.now())
          .then([rp](std::vector<model::key_info>& keys) mutable { rp.deliver(std::move(keys)); },
                [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self](atom::revoke, std::string& id) -> caf::result<uint32_t> {
        if (auto err = check_identity(id))
          return err;
        auto& st = self->state;
        auto rp = self->make_response_promise<uint32_t>();
        self
          ->request(st.persistence, st.cfg.request_timeout, atom::keys::value,
                    atom::revoke::value, id)
          .then(
            [self, rp, id](uint32_t n) mutable {
              CF_INFO("keys", "revoked ", n, " keys of ", id);
              reload(self, [rp, n]() mutable { rp.deliver(n); });
            },
            [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self](atom::rotate, std::string& id,
             int64_t grace_seconds) -> caf::result<model::key_entry> {
        if (auto err = check_identity(id))
          return err;
        if (auto err = check_grace(grace_seconds))
          return err;
        auto& st = self->state;
        model::key_entry fresh;
        fresh.id = std::move(id);
        fresh.secret = secret_of(self);
        fresh.created_at = st.cfg.now();
        if (fresh.secret.empty())
          return no_secret();
        auto old_expire_at = fresh.created_at + grace_seconds * 1000;
        auto rp = self->make_response_promise<model::key_entry>();
        self
          ->request(st.persistence, st.cfg.request_timeout, atom::keys::value,
                    atom::rotate::value, std::move(fresh), old_expire_at)
          .then(
            [self, rp, grace_seconds](model::key_entry& k) mutable {
              CF_INFO("keys", "rotated the keys of ", k.id, ": the previous ones work ",
                      grace_seconds, " s more");
              auto key = std::make_shared<model::key_entry>(std::move(k));
              reload(self, [rp, key]() mutable { rp.deliver(std::move(*key)); });
            },
            [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self](atom::tick) { check(self); },
    };
  };
  return sys.spawn(fn, std::move(cfg), std::move(persistence), std::move(transport));
}

}  // namespace coapfleet::server
