// What the agent's actor tests share: an actor system per test on CAF's
// test_coordinator (the test decides when messages are delivered and when
// timers fire), a temporary state directory, and mock collaborators that
// implement the agents' typed interfaces and record what they were sent.
// Nothing here is global: every fixture owns its system, its directory and
// its logs.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <caf/scheduler/test_coordinator.hpp>

#include "actors/interfaces.hpp"
#include "common/log.hpp"

namespace coapfleet::agent_test {

namespace fs = std::filesystem;

/// A fresh directory from mkdtemp, removed with its content at the end.
struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "cf-agent-actors-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_text(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << content;
  REQUIRE(out.good());
}

// -- the transport -------------------------------------------------------------------

/// One CoAP request an actor asked the transport to send.
struct sent_request {
  uint64_t id = 0;
  client_request req;
  caf::actor from;  ///< who gets the (response, id, client_response)
};

/// What the mock transport saw.
struct transport_log {
  std::vector<sent_request> requests;
  std::vector<model::health_report> health;
  std::vector<std::pair<uint64_t, coap_reply>> replies;
  /// The server's side of `GET updates/<job>/spec`: answered at once with
  /// 2.05 and the body given here for the job, 4.04 for a job not here
  /// (never logged in `requests`), unless `specs_answer` is false: then
  /// logged and left for the test to answer.
  std::map<std::string, std::string> specs;
  bool specs_answer = true;
  std::vector<sent_request> spec_requests;  ///< every spec request, answered or not
};

/// "job-1" for "updates/job-1/spec", "" for any other path.
inline std::string spec_job_of(const std::string& path) {
  const std::string head = "updates/", tail = "/spec";
  if (path.size() <= head.size() + tail.size() || path.compare(0, head.size(), head) != 0
      || path.compare(path.size() - tail.size(), tail.size(), tail) != 0)
    return {};
  return path.substr(head.size(), path.size() - head.size() - tail.size());
}

inline agent_transport_actor::behavior_type
mock_transport(agent_transport_actor::pointer self, std::shared_ptr<transport_log> log) {
  return {
    [self, log](atom::request, uint64_t id, client_request& req) {
      auto from = caf::actor_cast<caf::actor>(self->current_sender());
      auto job = spec_job_of(req.path);
      if (!job.empty()) {
        log->spec_requests.push_back({id, req, from});
        if (log->specs_answer) {
          client_response r;
          auto i = log->specs.find(job);
          r.code = i == log->specs.end() ? 404 : 205;
          r.payload = i == log->specs.end() ? R"({"error":"job not found"})" : i->second;
          caf::anon_send(from, atom::response::value, id, std::move(r));
          return;
        }
      }
      log->requests.push_back({id, std::move(req), from});
    },
    [log](atom::health, model::health_report& h) { log->health.push_back(std::move(h)); },
    [log](atom::reply, uint64_t id, coap_reply& r) { log->replies.emplace_back(id, std::move(r)); },
  };
}

inline client_response answered(uint16_t code, std::string payload = {}) {
  client_response r;
  r.code = code;
  r.payload = std::move(payload);
  return r;
}

/// No answer from the server (what the transport says after its retransmissions).
inline client_response no_answer() {
  client_response r;
  r.code = 0;
  r.error = "no response (timeout)";
  return r;
}

// -- the reporter --------------------------------------------------------------------

/// What the mock reporter was given.
struct reporter_log {
  std::vector<model::health_report> health;
  std::vector<model::update_report> reports;
  bool registered = false;
};

inline reporter_actor::behavior_type mock_reporter(reporter_actor::pointer,
                                                   std::shared_ptr<reporter_log> log) {
  return {
    [log](atom::health, model::health_report& h) { log->health.push_back(std::move(h)); },
    [log](atom::report, model::update_report& r) { log->reports.push_back(std::move(r)); },
    [log](atom::status) { return log->registered; },
    [](atom::response, uint64_t, client_response&) {},
    [](atom::tick) {},
    [](atom::resume) {},
  };
}

// -- the actor system ----------------------------------------------------------------

/// An actor system on the test coordinator, a scoped actor to ask with, and
/// the actors a test spawned (stopped at the end, so the system can go).
struct coordinated_system {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::unique_ptr<caf::scoped_actor> self;
  std::vector<caf::actor> owned;

  coordinated_system() {
    log::set_level(log::level::off);
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.console", caf::atom("none"));
    cfg.add_message_types<caf::id_block::coapfleet>();
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    self = std::make_unique<caf::scoped_actor>(*sys);
  }

  ~coordinated_system() {
    stop_all();
    self.reset();
    sys.reset();
  }

  coordinated_system(const coordinated_system&) = delete;
  coordinated_system& operator=(const coordinated_system&) = delete;

  /// Remembers `h` to stop it at the end; returns it.
  template <class Handle>
  Handle own(Handle h) {
    owned.push_back(caf::actor_cast<caf::actor>(h));
    return h;
  }

  /// Stops `h` (as a crash or a restart of the process would) and runs the
  /// system until its exit is processed.
  template <class Handle>
  void stop(const Handle& h) {
    caf::anon_send_exit(h, caf::exit_reason::kill);
    sched->run();
  }

  void stop_all() {
    for (auto& h : owned)
      caf::anon_send_exit(h, caf::exit_reason::kill);
    owned.clear();
    sched->run();
  }

  /// The delay until the earliest pending timer, or -1 ms when none is pending.
  std::chrono::milliseconds next_timer() const {
    auto& clock = sched->clock();
    if (clock.schedule().empty())
      return std::chrono::milliseconds(-1);
    return std::chrono::duration_cast<std::chrono::milliseconds>(
      clock.schedule().begin()->first - clock.current_time);
  }

  /// Moves the clock forward (timers due fire) and runs the system.
  void advance(caf::timespan by) {
    sched->advance_time(by);
    sched->run();
  }

  /// Sends a request, runs the system, and returns the answer (or fails).
  template <class T, class Handle, class... Ts>
  T ask(const Handle& h, Ts&&... xs) {
    T result{};
    auto rh = (*self)->request(h, caf::infinite, std::forward<Ts>(xs)...);
    sched->run();
    bool got = false;
    std::move(rh).receive([&](T& x) { result = std::move(x); got = true; },
                          [&](caf::error& e) { FAIL("unexpected error: " << caf::to_string(e)); });
    REQUIRE(got);
    return result;
  }

  /// Sends a request that must fail; returns the error.
  template <class T, class Handle, class... Ts>
  caf::error ask_error(const Handle& h, Ts&&... xs) {
    caf::error result;
    auto rh = (*self)->request(h, caf::infinite, std::forward<Ts>(xs)...);
    sched->run();
    std::move(rh).receive([&](T&) { FAIL("expected an error"); },
                          [&](caf::error& e) { result = std::move(e); });
    return result;
  }
};

/// Polls `pred` (a real child process must finish) with a bounded deadline.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds within = std::chrono::seconds(10)) {
  auto until = std::chrono::steady_clock::now() + within;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until)
      return false;
    struct timespec ts{0, 5 * 1000 * 1000};
    ::nanosleep(&ts, nullptr);
  }
  return true;
}

}  // namespace coapfleet::agent_test
