// A bound on the server's stop. Once everything acknowledged is committed
// and the actors were told to end, the actor system waits for every actor
// to end; an actor that never does (a handle kept alive across members, a
// call that does not return) would keep the process alive for ever after
// SIGTERM. The watch gives them `grace`: then it logs which of the named
// actors had not ended and does what the stop was for without them (exit
// with code 0, or the restart: nothing acknowledged is lost).
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace coapfleet {

class shutdown_watch {
public:
  explicit shutdown_watch(std::chrono::milliseconds grace) : grace_(grace) {}
  ~shutdown_watch();
  shutdown_watch(const shutdown_watch&) = delete;
  shutdown_watch& operator=(const shutdown_watch&) = delete;

  /// Notes when `a` ends (named in the log if it has not by the deadline).
  void track(const std::string& name, const caf::actor& a);
  /// The stop began: from now on the grace runs; past it, `then` with the
  /// names of the tracked actors that had not ended (it ends the process).
  void start(std::function<void(const std::string&)> then);
  /// The actor system is gone: the watch is over.
  void done();

private:
  struct shared {
    std::mutex m;
    std::condition_variable cv;
    std::map<std::string, bool> ended;
    /// Weak: whether an actor that ended is still referenced (its object is
    /// not destroyed: a detached one's thread waits for that) shows at the deadline.
    std::map<std::string, caf::actor_addr> addrs;
    bool over = false;
  };
  std::chrono::milliseconds grace_;
  std::shared_ptr<shared> s_ = std::make_shared<shared>();
  std::thread thread_;
};

}  // namespace coapfleet
