#include "common/shutdown_watch.hpp"

#include <utility>

#include <unistd.h>

#include "common/log.hpp"

namespace coapfleet {

shutdown_watch::~shutdown_watch() {
  done();
}

void shutdown_watch::track(const std::string& name, const caf::actor& a) {
  if (!a)
    return;
  {
    std::lock_guard<std::mutex> g{s_->m};
    s_->ended.emplace(name, false);
  }
  auto s = s_;
  a->attach_functor([s, name] {
    std::lock_guard<std::mutex> g{s->m};
    s->ended[name] = true;
  });
}

void shutdown_watch::start(std::function<void(const std::string&)> then) {
  if (thread_.joinable())
    return;
  thread_ = std::thread([s = s_, grace = grace_, then = std::move(then)] {
    std::string waiting;
    {
      std::unique_lock<std::mutex> g{s->m};
      if (s->cv.wait_for(g, grace, [&] { return s->over; }))
        return;
      for (auto& [name, ended] : s->ended)
        if (!ended)
          waiting += (waiting.empty() ? "" : ", ") + name;
    }
    // Written past stdio: an actor that hangs may hold stderr's lock (a
    // write to a full pipe), which must not hold the stop up too.
    auto line = log::format_line(
      log::level::error, "main",
      log::concat("actors still running ",
                  std::chrono::duration_cast<std::chrono::seconds>(grace).count(),
                  " s after the stop (",
                  waiting.empty() ? "none of the named ones: node, job or middleman actors"
                                  : waiting,
                  "): going on without them (everything acknowledged is committed)"));
    [[maybe_unused]] auto n = ::write(2, line.data(), line.size());
    then(waiting);
  });
}

void shutdown_watch::done() {
  {
    std::lock_guard<std::mutex> g{s_->m};
    s_->over = true;
  }
  s_->cv.notify_all();
  if (thread_.joinable())
    thread_.join();
}

}  // namespace coapfleet
