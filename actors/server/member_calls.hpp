// Requests one actor of a cluster member handed to an actor of another
// member and that are not yet answered (the job supervisor's and the
// registry's). When that member's link goes they are answered at once
// (5.03: retry), not left to run into their timeout.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <utility>

#include <caf/error.hpp>

#include "actors/replies.hpp"

namespace coapfleet::server {

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
