// The keys actor owns the identities' pre-shared keys: it adds, revokes and
// rotates them (stored through the persistence actor) and keeps the
// transport's table of valid keys current — after its own changes at once,
// after changes by `coapfleet-server keys` in another process and after a
// rotated key's grace period within one check interval.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "actors/interfaces.hpp"
#include "common/clock.hpp"

namespace coapfleet::server {

struct keys_config {
  /// How often the stored key version (and the next expiry) is checked.
  std::chrono::milliseconds check_interval{1000};
  /// How long a request to the persistence actor may take.
  std::chrono::seconds request_timeout{30};
  /// Where "now" comes from: keys are valid, and expire, by this clock.
  std::function<model::millis()> now = now_millis;
  /// The source of new keys' text (tests may replace it); "" is a failure.
  std::function<std::string()> new_secret;  ///< default: new_key_secret
};

/// A new key's text: model::key_bytes random bytes (getrandom(2)) as
/// lower-case hex; "" when the kernel gives no random bytes.
std::string new_key_secret();

/// Why a key cannot be made for `id` with role `r` (bad_request naming
/// the field), or none. Shared with `coapfleet-server keys`.
caf::error check_new_key(const std::string& id, model::role r);
/// Why `id` names no identity (bad_request naming "id"), or none.
caf::error check_identity(const std::string& id);
/// Why a rotation's grace period is out of range (bad_request naming
/// "grace_seconds"), or none.
caf::error check_grace(int64_t seconds);

keys_actor spawn_keys(caf::actor_system& sys, keys_config cfg, persistence_actor persistence,
                      transport_actor transport);

}  // namespace coapfleet::server
