// The agent's installer on the test coordinator with a mock reporter and
// transport, its journal in a temporary state directory, and its handler
// runs started through the installer's worker seam: either the real worker
// body (run_handler with a real `sh -c`, or a handler that throws) on the
// coordinator, or a puppet worker the test moves by hand (it reports when
// told, names a process group, ends without a result, or never reports).
// The watchdog fires when the test moves the clock.
#include "installer_fixture.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <stdexcept>

#include "actors/agent/installer.hpp"
#include "actors/agent/journal.hpp"
#include "common/sha256.hpp"

extern char** environ;

using namespace coapfleet;
using namespace coapfleet::agent_test;
using namespace std::chrono_literals;
using model::node_update_state;

namespace {

/// A child process in a process group of its own (like a handler's), killed
/// and reaped at the end whatever happened.
struct child_group {
  pid_t pid = -1;
  int status = 0;
  bool reaped = false;

  child_group() {
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    char sh[] = "sleep", arg[] = "60";
    char* argv[] = {sh, arg, nullptr};
    REQUIRE(posix_spawnp(&pid, "sleep", nullptr, &attr, argv, environ) == 0);
    posix_spawnattr_destroy(&attr);
  }
  ~child_group() {
    if (!reaped) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    }
  }
  /// Whether it was killed by SIGKILL (polled: the signal takes a moment).
  bool killed() {
    eventually([&] { return reaped = reaped || ::waitpid(pid, &status, WNOHANG) == pid; },
               5s);
    return reaped && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  }
  bool alive() { return !reaped && ::waitpid(pid, &status, WNOHANG) == 0; }
};

}  // namespace

TEST_CASE_FIXTURE(installer_fixture, "installer: a notification is journaled before it is answered and runs once") {
  start();
  CHECK(status() == std::pair<std::string, uint32_t>{"", 0});
  CHECK(notify(script_job("job-1", "true")));
  // Answered: the job is on disk, and its run has begun.
  auto j = journal();
  REQUIRE(j.jobs.size() == 1);
  CHECK(j.jobs[0].note.job_id == "job-1");
  CHECK(j.jobs[0].note.spec.script == "true");
  CHECK(j.jobs[0].phase == model::job_phase::installing);
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].run.note.spec.script == "true");
  CHECK(runs[0].run.cfg.state_dir == dir.path.string());
  CHECK(states_of("job-1") == std::vector<node_update_state>{node_update_state::installing});
  CHECK(status() == std::pair<std::string, uint32_t>{"job-1", 0});

  // The same notification again (the server retried): taken, not run twice.
  CHECK(notify(script_job("job-1", "true")));
  CHECK(runs.size() == 1);
  CHECK(journal().jobs.size() == 1);

  // A notification for another node is refused and not journaled.
  auto other = script_job("job-x", "true");
  other.node_id = "node-2";
  auto err = ask_error<atom::ok>(installer, atom::notify::value, other);
  CHECK(err.code() == static_cast<uint8_t>(api_errc::bad_request));
  REQUIRE(err.context().match_elements<std::string, std::string, std::string, std::string>());
  CHECK(err.context().get_as<std::string>(1) == "node_id");
  CHECK(journal().jobs.size() == 1);

  // Once it finished, a late repeat is still not run again.
  worker_says(0, atom::report::value, true, int32_t{1}, std::string(), false);
  CHECK(states_of("job-1") == ran_ok);
  CHECK(journal().jobs.empty());
  CHECK(journal().done == std::deque<std::string>{"job-1"});
  CHECK(notify(script_job("job-1", "true")));
  CHECK(runs.size() == 1);
  CHECK(status() == std::pair<std::string, uint32_t>{"", 0});
}

TEST_CASE_FIXTURE(installer_fixture, "installer: a job that cannot be journaled is refused, not run") {
  fs::create_directories(dir.path / "journal.json");  // no file can be put there
  start();
  auto err = ask_error<atom::ok>(installer, atom::notify::value, serve(script_job("job-1", "true")));
  CHECK(err.code() == static_cast<uint8_t>(api_errc::internal));
  CHECK(runs.empty());
  CHECK(reporter_seen->reports.empty());
  CHECK(status() == std::pair<std::string, uint32_t>{"", 0});
  // Once the disk takes it again, the server's retry is accepted.
  fs::remove(dir.path / "journal.json");
  CHECK(notify(script_job("job-1", "true")));
  CHECK(runs.size() == 1);
  CHECK(journal().jobs.size() == 1);
}

TEST_CASE_FIXTURE(installer_fixture, "installer: a second job waits for the first") {
  start();
  CHECK(notify(script_job("job-1", "true")));
  CHECK(notify(script_job("job-2", "true")));
  REQUIRE(runs.size() == 1);
  CHECK(status() == std::pair<std::string, uint32_t>{"job-1", 1});
  auto j = journal();
  REQUIRE(j.jobs.size() == 2);
  CHECK(j.jobs[1].note.job_id == "job-2");
  CHECK(j.jobs[1].phase == model::job_phase::queued);
  CHECK(reports_of("job-2").empty());

  worker_says(0, atom::report::value, true, int32_t{1}, std::string(), false);
  CHECK(states_of("job-1") == ran_ok);
  REQUIRE(runs.size() == 2);
  CHECK(runs[1].job_id == "job-2");
  CHECK(status() == std::pair<std::string, uint32_t>{"job-2", 0});
  worker_says(1, atom::report::value, false, int32_t{8}, std::string("script exited with code 1"), false);
  CHECK(states_of("job-2") == ran_failed);
  CHECK(status() == std::pair<std::string, uint32_t>{"", 0});
  CHECK(journal().done == std::deque<std::string>{"job-1", "job-2"});
}

TEST_CASE_FIXTURE(installer_fixture, "installer: a script job runs with sh -c and reports installing, succeeded") {
  use_worker(agent::run_handler);
  start();
  CHECK(notify(script_job("job-1", "echo done > made.txt")));
  CHECK(states_of("job-1") == ran_ok);
  auto done = reports_of("job-1").back();
  CHECK(done.node_id == "node-1");
  CHECK(done.result == 1);
  CHECK(done.progress == 100);
  CHECK(done.error_message.empty());
  CHECK(read_text(dir / "made.txt") == "done\n");  // in the state directory
  CHECK(status() == std::pair<std::string, uint32_t>{"", 0});
  CHECK(journal().jobs.empty());
}

TEST_CASE_FIXTURE(installer_fixture, "installer: a failing script reports failed with its exit code") {
  use_worker(agent::run_handler);
  start();
  CHECK(notify(script_job("job-1", "echo oops; exit 3")));
  CHECK(notify(script_job("job-2", "true")));
  CHECK(states_of("job-1") == ran_failed);
  auto failed = reports_of("job-1").back();
  CHECK(failed.result == 8);
  CHECK(failed.error_message == "script exited with code 3: oops");
  CHECK(states_of("job-2") == ran_ok);  // the next job ran after it
}

TEST_CASE_FIXTURE(installer_fixture, "installer: a handler that throws is a failed job (8) and the next one runs") {
  use_worker([](const agent::handler_run& run) -> agent::install_outcome {
    if (run.note.job_id == "job-1")
      throw std::runtime_error("boom");
    agent::install_outcome ok;
    ok.ok = true;
    ok.result = 1;
    return ok;
  });
  start();
  CHECK(notify(script_job("job-1", "true")));
  CHECK(notify(script_job("job-2", "true")));
  CHECK(states_of("job-1") == ran_failed);
  auto failed = reports_of("job-1").back();
  CHECK(failed.result == 8);
  CHECK(failed.error_message == "the script handler failed: boom");
  CHECK(states_of("job-2") == ran_ok);
  CHECK(status() == std::pair<std::string, uint32_t>{"", 0});
}

TEST_CASE_FIXTURE(installer_fixture, "installer: a worker that ends without a result fails its job") {
  start();
  CHECK(notify(script_job("job-1", "true")));
  CHECK(notify(script_job("job-2", "true")));
  worker_says(0, atom::cancel::value);  // its work crashed
  CHECK(states_of("job-1") == ran_failed);
  auto failed = reports_of("job-1").back();
  CHECK(failed.result == 8);
  CHECK(failed.error_message.find("ended without a result") != std::string::npos);
  REQUIRE(runs.size() == 2);
  CHECK(status() == std::pair<std::string, uint32_t>{"job-2", 0});
}

TEST_CASE_FIXTURE(installer_fixture, "installer: the watchdog fails a run that never reports and moves on") {
  start();
  child_group stuck;        // what the stuck handler runs
  child_group started_late; // what its worker starts after it was abandoned
  CHECK(notify(script_job("job-1", "true", 5)));
  CHECK(notify(script_job("job-2", "true", 5)));
  worker_says(0, atom::install::value, static_cast<int32_t>(stuck.pid));

  // Its timeout (5 s) plus the grace period (2 s): nothing before ...
  advance(6999ms);
  CHECK(states_of("job-1") == std::vector<node_update_state>{node_update_state::installing});
  CHECK(runs.size() == 1);
  // ... and then the job failed, its child's process group is killed, and
  // the next job runs.
  advance(1ms);
  CHECK(states_of("job-1") == ran_failed);
  auto failed = reports_of("job-1").back();
  CHECK(failed.result == 8);
  CHECK(failed.error_message.find("timed out") != std::string::npos);
  CHECK(stuck.killed());
  REQUIRE(runs.size() == 2);
  CHECK(status() == std::pair<std::string, uint32_t>{"job-2", 0});

  // The abandoned worker comes back: a child it starts goes at once, its
  // late result is ignored.
  CHECK(started_late.alive());
  worker_says(0, atom::install::value, static_cast<int32_t>(started_late.pid));
  CHECK(started_late.killed());
  worker_says(0, atom::report::value, true, int32_t{1}, std::string(), false);
  CHECK(states_of("job-1") == ran_failed);
  CHECK(status() == std::pair<std::string, uint32_t>{"job-2", 0});
  // Nor is anyone else's result taken for the current run.
  caf::anon_send(installer, atom::report::value, true, int32_t{1}, std::string(), false);
  sched->run();
  CHECK(status() == std::pair<std::string, uint32_t>{"job-2", 0});

  // job-2 reports in time; its watchdog then changes nothing.
  worker_says(1, atom::report::value, true, int32_t{1}, std::string(), false);
  CHECK(states_of("job-2") == ran_ok);
  advance(10s);
  CHECK(states_of("job-2") == ran_ok);
  CHECK(journal().done == std::deque<std::string>{"job-1", "job-2"});
}

TEST_CASE_FIXTURE(installer_fixture, "installer: the watchdog uses the configured timeout when the job has none") {
  icfg.handlers.timeout = 20s;
  start();
  CHECK(notify(script_job("job-1", "true")));
  advance(21s);
  CHECK(states_of("job-1") == std::vector<node_update_state>{node_update_state::installing});
  advance(1s);
  CHECK(states_of("job-1") == ran_failed);
}

TEST_CASE_FIXTURE(installer_fixture, "installer: after a restart a script that was running fails, the queue goes on") {
  start();
  CHECK(notify(script_job("job-1", "touch ran-once")));
  CHECK(notify(script_job("job-2", "true")));
  auto pip = script_job("job-3", "");
  pip.spec.package_type = "pip";
  pip.spec.script.clear();
  pip.spec.packages = {"requests"};
  CHECK(notify(pip));
  REQUIRE(runs.size() == 1);
  // The agent dies while job-1's script runs.
  stop(installer);
  REQUIRE(journal().jobs.size() == 3);
  CHECK(journal().jobs[0].phase == model::job_phase::installing);

  reporter_seen->reports.clear();
  start();
  // job-1 is reported failed and not run again; job-2 runs.
  CHECK(states_of("job-1") == std::vector<node_update_state>{node_update_state::failed});
  auto failed = reports_of("job-1").back();
  CHECK(failed.result == 8);
  CHECK(failed.error_message.find("restarted") != std::string::npos);
  REQUIRE(runs.size() == 2);
  CHECK(runs[1].job_id == "job-2");
  CHECK(status() == std::pair<std::string, uint32_t>{"job-2", 1});

  // A pip install is safe to repeat: after another restart it runs again.
  worker_says(1, atom::report::value, true, int32_t{1}, std::string(), false);
  REQUIRE(runs.size() == 3);
  CHECK(runs[2].job_id == "job-3");
  stop(installer);
  start();
  REQUIRE(runs.size() == 4);
  CHECK(runs[3].job_id == "job-3");
  CHECK(reports_of("job-3").back().state == node_update_state::installing);
}

namespace {

/// The ETag option's bytes for an artifact's SHA-256, as the server sends them.
std::string etag_bytes(const std::string& sha256) {
  auto tag = model::etag_of_sha256(sha256);
  std::string out;
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((tag >> shift) & 0xff));
  return out;
}

client_response block(const std::string& body, int32_t num, const std::string& sha256) {
  auto r = answered(205, body.substr(static_cast<size_t>(num) * 1024, 1024));
  r.block2_num = num;
  r.block2_more = static_cast<size_t>(num + 1) * 1024 < body.size();
  r.etag = etag_bytes(sha256);
  return r;
}

}  // namespace

TEST_CASE_FIXTURE(installer_fixture, "installer: a file job downloads block by block, retries, installs") {
  use_worker(agent::run_handler);
  icfg.handlers.root = dir / "root";
  icfg.server_host = "127.1.0.250";
  start();
  std::string body(1500, 'x');
  body.replace(0, 5, "fw-v2");
  auto sha = common::sha256_hex(body);
  auto note = script_job("job-f", "");
  note.spec.package_type = "file";
  note.spec.script.clear();
  note.spec.artifact = "fw.bin";
  note.spec.artifact_sha256 = sha;
  note.spec.artifact_size = static_cast<int32_t>(body.size());
  note.spec.target_path = "/opt/fw.bin";
  CHECK(notify(note));
  REQUIRE(wire->requests.size() == 1);
  auto first = wire->requests[0];
  CHECK(first.req.method == request_method::get);
  CHECK(first.req.host == "127.1.0.250");
  CHECK(first.req.path == "artifacts/fw.bin");
  CHECK(first.req.block2_num == 0);
  CHECK(first.req.block2_szx == 6);
  CHECK(journal().jobs[0].phase == model::job_phase::downloading);

  // No answer: the same block again after a second.
  caf::anon_send(first.from, atom::response::value, first.id, no_answer());
  sched->run();
  CHECK(wire->requests.size() == 1);
  advance(1s);
  REQUIRE(wire->requests.size() == 2);
  CHECK(wire->requests[1].req.block2_num == 0);
  auto again = wire->requests[1];
  caf::anon_send(again.from, atom::response::value, again.id, block(body, 0, sha));
  sched->run();
  REQUIRE(wire->requests.size() == 3);
  auto second = wire->requests[2];
  CHECK(second.req.block2_num == 1);
  caf::anon_send(second.from, atom::response::value, second.id, block(body, 1, sha));
  sched->run();

  CHECK(states_of("job-f")
        == std::vector<node_update_state>{node_update_state::downloading,
                                          node_update_state::downloading,
                                          node_update_state::downloaded,
                                          node_update_state::installing,
                                          node_update_state::succeeded});
  CHECK(reports_of("job-f")[1].progress == 60);
  CHECK(read_text(dir / "root/opt/fw.bin") == body);
  CHECK_FALSE(fs::exists(dir.path / "downloads/job-f.part"));
  CHECK(journal().jobs.empty());
}

TEST_CASE_FIXTURE(installer_fixture, "installer: a block of another version fails the download") {
  use_worker(agent::run_handler);
  start();
  std::string body(1500, 'y');
  auto note = script_job("job-f", "");
  note.spec.package_type = "file";
  note.spec.artifact = "fw.bin";
  note.spec.artifact_sha256 = common::sha256_hex(body);
  note.spec.target_path = "/opt/fw.bin";
  CHECK(notify(note));
  REQUIRE(wire->requests.size() == 1);
  auto r = wire->requests[0];
  caf::anon_send(r.from, atom::response::value, r.id,
                 block(body, 0, common::sha256_hex("another version")));
  sched->run();
  CHECK(states_of("job-f")
        == std::vector<node_update_state>{node_update_state::downloading,
                                          node_update_state::failed});
  auto failed = reports_of("job-f").back();
  CHECK(failed.result == static_cast<int32_t>(model::update_result::integrity_check_failed));
  CHECK(runs.empty());  // nothing was installed
}

TEST_CASE_FIXTURE(installer_fixture, "installer: a setuid file job fails before anything is downloaded") {
  use_worker(agent::run_handler);
  icfg.handlers.root = dir / "root";
  start();
  auto note = script_job("job-s", "");
  note.spec.package_type = "file";
  note.spec.script.clear();
  note.spec.artifact = "tool";
  note.spec.artifact_sha256 = common::sha256_hex("tool");
  note.spec.target_path = "/usr/bin/tool";
  note.spec.mode = "4755";
  CHECK(notify(note));  // taken (the server hears why it failed in the report)
  CHECK(wire->requests.empty());  // no download asked for
  CHECK(states_of("job-s") == std::vector<node_update_state>{node_update_state::failed});
  auto failed = reports_of("job-s").back();
  CHECK(failed.result == static_cast<int32_t>(model::update_result::update_failed));
  CHECK(failed.error_message.find("setuid") != std::string::npos);
  CHECK(failed.error_message.find("--allow-setid") != std::string::npos);
  CHECK(runs.empty());
  CHECK_FALSE(fs::exists(dir.path / "root"));
  CHECK_FALSE(fs::exists(dir.path / "downloads/job-s.part"));
  CHECK(journal().jobs.empty());
}

TEST_CASE_FIXTURE(installer_fixture, "installer: with allow_setid a setuid file job downloads") {
  use_worker(agent::run_handler);
  icfg.handlers.root = dir / "root";
  icfg.handlers.allow_setid = true;
  start();
  auto note = script_job("job-s", "");
  note.spec.package_type = "file";
  note.spec.script.clear();
  note.spec.artifact = "tool";
  note.spec.artifact_sha256 = common::sha256_hex("tool");
  note.spec.target_path = "/usr/bin/tool";
  note.spec.mode = "4755";
  CHECK(notify(note));
  REQUIRE(wire->requests.size() == 1);
  CHECK(wire->requests[0].req.path == "artifacts/tool");
}

TEST_CASE("installer: the default worker runs the handler on a thread of its own") {
  // A real actor system (threads, real time): the installer starts its
  // default detached worker; the test polls the installer's status.
  log::set_level(log::level::off);
  temp_dir dir;
  auto reporter_seen = std::make_shared<reporter_log>();
  auto wire = std::make_shared<transport_log>();
  {
    caf::actor_system_config cfg;
    cfg.set("logger.console", caf::atom("none"));
    cfg.set("scheduler.max-threads", 2);
    cfg.add_message_types<caf::id_block::coapfleet>();
    caf::actor_system sys{cfg};
    caf::scoped_actor self{sys};
    auto reporter = sys.spawn(mock_reporter, reporter_seen);
    auto transport = sys.spawn(mock_transport, wire);
    agent::installer_config icfg;
    icfg.node_id = "node-1";
    icfg.state_dir = dir.path.string();
    icfg.handlers.state_dir = dir.path.string();
    icfg.handlers.timeout = 30s;
    auto installer = agent::spawn_installer(sys, icfg, reporter, transport);
    auto ask_status = [&] {
      std::pair<std::string, uint32_t> out{"?", 0};
      self->request(installer, 5s, atom::status::value)
        .receive([&](std::string& job, uint32_t queued) { out = {job, queued}; },
                 [&](caf::error& e) { FAIL(caf::to_string(e)); });
      return out;
    };
    for (auto& job : {installer_fixture::script_job("job-1", "echo ran > out.txt; exit 5"),
                      installer_fixture::script_job("job-2", "echo ran >> out.txt")})
      wire->specs[job.job_id] = model::encode_node_job(job);
    bool taken = false;
    self->request(installer, 5s, atom::notify::value,
                  installer_fixture::script_job("job-1", "echo ran > out.txt; exit 5"))
      .receive([&](atom::ok) { taken = true; }, [&](caf::error& e) { FAIL(caf::to_string(e)); });
    CHECK(taken);
    self->request(installer, 5s, atom::notify::value,
                  installer_fixture::script_job("job-2", "echo ran >> out.txt"))
      .receive([&](atom::ok) { taken = true; }, [&](caf::error& e) { FAIL(caf::to_string(e)); });
    CHECK(taken);
    CHECK(eventually([&] { return ask_status() == std::pair<std::string, uint32_t>{"", 0}; }));
    for (auto h : {caf::actor_cast<caf::actor>(installer), caf::actor_cast<caf::actor>(reporter),
                   caf::actor_cast<caf::actor>(transport)})
      self->send_exit(h, caf::exit_reason::user_shutdown);
  }  // the system has stopped: its threads are done with the logs
  CHECK(read_text(dir / "out.txt") == "ran\nran\n");
  std::vector<node_update_state> seen;
  for (auto& r : reporter_seen->reports)
    seen.push_back(r.state);
  CHECK(seen == std::vector<node_update_state>{node_update_state::installing,
                                               node_update_state::failed,
                                               node_update_state::installing,
                                               node_update_state::succeeded});
  REQUIRE(reporter_seen->reports.size() == 4);
  CHECK(reporter_seen->reports[1].error_message == "script exited with code 5");
}

namespace {

/// What an installer heard from a worker, in order.
struct worker_log {
  std::vector<std::string> said;
};

installer_actor::behavior_type listening_installer(installer_actor::pointer,
                                                   std::shared_ptr<worker_log> log) {
  return {
    [](atom::notify, model::update_notification&) { return atom::ok::value; },
    [](atom::cancel, std::string&, uint32_t, bool) { return std::string("finished"); },
    [](atom::stop) -> int32_t { return 0; },
    [](atom::cancel, uint64_t) {},
    [](atom::status) -> caf::result<std::string, uint32_t> { return {std::string(), 0u}; },
    [](atom::response, uint64_t, client_response&) {},
    [log](atom::report, bool ok, int32_t result, std::string& msg, bool) {
      log->said.push_back("report " + std::to_string(ok) + " " + std::to_string(result) + " "
                          + msg);
    },
    [log](atom::install, int32_t pgid) {
      log->said.push_back(pgid > 0 ? "child" : "child reaped");
    },
    [](atom::deadline, uint64_t) {},
    [](atom::tick) {},
    [](atom::job, uint64_t) {},
  };
}

}  // namespace

TEST_CASE_FIXTURE(coordinated_system, "install worker: names its child's process group, then reports once") {
  temp_dir dir;
  auto heard = std::make_shared<worker_log>();
  auto listener = own(sys->spawn(listening_installer, heard));
  agent::handler_run run;
  run.note = installer_fixture::script_job("job-1", "exit 0");
  run.cfg.state_dir = dir.path.string();
  sys->spawn(agent::install_worker, listener, run, agent::handler_fn{agent::run_handler});
  sched->run();
  CHECK(heard->said == std::vector<std::string>{"child", "child reaped", "report 1 1 "});

  // An unsupported package type starts no child.
  heard->said.clear();
  run.note.spec.package_type = "rpm";
  sys->spawn(agent::install_worker, listener, run, agent::handler_fn{agent::run_handler});
  sched->run();
  CHECK(heard->said
        == std::vector<std::string>{"report 0 6 unsupported package_type rpm"});
}
