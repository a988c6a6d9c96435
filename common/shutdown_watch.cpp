#include "common/shutdown_watch.hpp"

#include <csignal>
#include <cstdlib>
#include <string>
#include <utility>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.hpp"

namespace coapfleet {

namespace {

/// With COAPFLEET_STOP_STACKS set (the tests set it): every thread's stack
/// goes to stderr (gdb in batch mode), so a stop that needed the watch
/// shows where the process waits. gdb missing: a line says so.
void dump_stacks() {
  const char* want = std::getenv("COAPFLEET_STOP_STACKS");
  if (!want || !*want)
    return;
  auto pid = std::to_string(::getpid());
  ::prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);  // Yama: a child may trace us
  auto child = ::fork();
  if (child == 0) {
    ::dup2(2, 1);
    ::execlp("gdb", "gdb", "-p", pid.c_str(), "-batch", "-nx", "-ex", "thread apply all bt",
             static_cast<char*>(nullptr));
    static const char msg[] = "COAPFLEET_STOP_STACKS: cannot run gdb\n";
    [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  if (child > 0) {
    // At most 10 s: the dump must not undo the bound it reports on.
    int status = 0;
    for (int waited_ms = 0; ::waitpid(child, &status, WNOHANG) == 0; waited_ms += 50) {
      if (waited_ms >= 10'000) {
        ::kill(child, SIGKILL);
        ::waitpid(child, &status, 0);
        break;
      }
      ::usleep(50'000);
    }
  }
}

}  // namespace

shutdown_watch::~shutdown_watch() {
  done();
}

void shutdown_watch::track(const std::string& name, const caf::actor& a) {
  if (!a)
    return;
  {
    std::lock_guard<std::mutex> g{s_->m};
    s_->ended.emplace(name, false);
    s_->addrs.emplace(name, a.address());
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
    std::string waiting, referenced;
    {
      std::unique_lock<std::mutex> g{s->m};
      if (s->cv.wait_for(g, grace, [&] { return s->over; }))
        return;
      for (auto& [name, ended] : s->ended)
        if (!ended)
          waiting += (waiting.empty() ? "" : ", ") + name;
      // Ended but not destroyed: something still holds a handle (the actor
      // system's destructor waits for a detached actor's object to go).
      for (auto& [name, addr] : s->addrs)
        if (auto* ctrl = addr.get(); ctrl != nullptr && s->ended[name])
          if (auto refs = ctrl->strong_refs.load(); refs > 0)
            referenced += (referenced.empty() ? "" : ", ") + name + " (" + std::to_string(refs)
                          + (refs == 1 ? " handle)" : " handles)");
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
                  "): going on without them (everything acknowledged is committed)",
                  referenced.empty() ? std::string{} : "; ended but still referenced: " + referenced));
    [[maybe_unused]] auto n = ::write(2, line.data(), line.size());
    dump_stacks();
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
