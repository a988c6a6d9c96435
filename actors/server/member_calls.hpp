// What the job supervisor and the registry of a cluster member share about
// the other members: the requests they handed to another member's actor
// and that are not yet answered (when that member's link goes they are
// answered at once, 5.03: retry, not left to run into their timeout);
// whether a message came from another member; a list of members for logs.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <utility>

#include <caf/error.hpp>
#include <caf/local_actor.hpp>
#include <vector>

#include "actors/replies.hpp"

namespace coapfleet::server {

/// Whether the message `self` handles came from another member (a request
/// handed on once is served where it arrives, never handed on again).
inline bool from_member(caf::local_actor* self) {
  auto& s = self->current_sender();
  return s && s->node() != self->node();
}

/// Member ids as a log shows them: "m1,m2,m3".
inline std::string member_list(const std::vector<std::string>& ids) {
  std::string out;
  for (auto& x : ids)
    out += (out.empty() ? "" : ",") + x;
  return out;
}

class member_calls {
public:
  /// A call to `member`; `fail` answers it with an error. Its number goes
  /// to `finish` when the member answers.
  uint64_t add(std::string member, std::function<void(caf::error)> fail) {
    auto call = ++next_;
    calls_.emplace(call, entry{std::move(member), std::move(fail)});
    return call;
  }

  /// The member answered call `call`: true when it is still to be answered
  /// (false: it was answered already, its member went away first).
  bool finish(uint64_t call) { return calls_.erase(call) > 0; }

  /// Answers every call to a member `linked` says is gone: 5.03, retry.
  template <class Linked>
  void fail_gone(Linked linked) {
    for (auto i = calls_.begin(); i != calls_.end();) {
      if (linked(i->second.member)) {
        ++i;
        continue;
      }
      auto e = std::move(i->second);
      i = calls_.erase(i);
      e.fail(make_api_error(api_errc::unavailable,
                            "member " + e.member + " went away while it had the request; retry",
                            "", "member_id", e.member));
    }
  }

  size_t size() const { return calls_.size(); }

private:
  struct entry {
    std::string member;
    std::function<void(caf::error)> fail;
  };
  std::unordered_map<uint64_t, entry> calls_;
  uint64_t next_ = 0;
};

}  // namespace coapfleet::server
