// The store on real databases: SQLite files in a temporary directory, and
// PostgreSQL (store_fixture.hpp).
#include "store/store.hpp"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "store_fixture.hpp"

using namespace coapfleet;
using namespace coapfleet::server;
using namespace coapfleet::server::testing;

namespace {

model::node_registration reg(const std::string& id, const std::string& host = "host") {
  model::node_registration r;
  r.node_id = id;
  r.hostname = host;
  r.ip_address = "127.1.0.1";
  r.port = 5683;
  r.services = {"sshd", "agent"};
  r.drivers = {"i2c"};
  r.system_info = {{"os", model::scalar::of(std::string{"Debian"})},
                   {"cores", model::scalar::of(4.0)},
                   {"virtual", model::scalar::of_bool(false)},
                   {"serial", model::scalar{}}};
  r.reported_status = "online";
  return r;
}

model::job_record job(const std::string& id, model::millis at = 1000) {
  model::job_record j;
  j.job_id = id;
  j.spec.name = "config " + id;
  j.spec.version = "1.2.3";
  j.spec.package_type = "file";
  j.spec.target_nodes = {"n1", "n2"};
  j.spec.packages = {"aiocoap==0.4.7"};
  j.spec.artifact = "app.conf";
  j.spec.target_path = "/etc/app.conf";
  j.spec.mode = "0644";
  j.spec.script = "echo done";
  j.spec.description = "a test job, with \"quotes\" and ünïcode";
  j.spec.timeout_seconds = 120;
  j.status = model::job_status::created;
  j.created_at = at;
  j.updated_at = at;
  return j;
}

model::node_job_state state(const std::string& node, model::node_update_state st,
                            int32_t progress, int32_t result, std::string error,
                            model::millis at) {
  model::node_job_state s;
  s.node_id = node;
  s.state = st;
  s.progress = progress;
  s.result = result;
  s.error_message = std::move(error);
  s.updated_at = at;
  return s;
}

void check_same(const model::job_spec& a, const model::job_spec& b) {
  CHECK(a.name == b.name);
  CHECK(a.version == b.version);
  CHECK(a.package_type == b.package_type);
  CHECK(a.target_nodes == b.target_nodes);
  CHECK(a.packages == b.packages);
  CHECK(a.artifact == b.artifact);
  CHECK(a.target_path == b.target_path);
  CHECK(a.mode == b.mode);
  CHECK(a.script == b.script);
  CHECK(a.description == b.description);
  CHECK(a.timeout_seconds == b.timeout_seconds);
}

void check_same(const model::job_record& a, const model::job_record& b) {
  CHECK(a.job_id == b.job_id);
  check_same(a.spec, b.spec);
  CHECK(a.status == b.status);
  CHECK(a.created_at == b.created_at);
  CHECK(a.updated_at == b.updated_at);
  CHECK(a.error_message == b.error_message);
  REQUIRE(a.nodes.size() == b.nodes.size());
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    CHECK(a.nodes[i].node_id == b.nodes[i].node_id);
    CHECK(a.nodes[i].state == b.nodes[i].state);
    CHECK(a.nodes[i].progress == b.nodes[i].progress);
    CHECK(a.nodes[i].result == b.nodes[i].result);
    CHECK(a.nodes[i].error_message == b.nodes[i].error_message);
    CHECK(a.nodes[i].updated_at == b.nodes[i].updated_at);
  }
}

}  // namespace

TEST_CASE("open creates the schema at user_version 5 in WAL mode" * doctest::test_suite("sqlite")) {
  temp_db dir;
  {
    auto s = open_ok(dir.path());
    CHECK(s->path() == dir.path());
    CHECK(s->ping());
    CHECK(s->load_nodes().empty());
    CHECK(s->load_jobs().empty());
  }
  CHECK(raw(dir.path(), "PRAGMA user_version") == "9");
  CHECK(raw(dir.path(), "PRAGMA journal_mode") == "wal");
  CHECK(raw(dir.path(), "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master"
                            " WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name)")
        == "artifact_chunks,artifacts,audit,health,job_history,job_holders,job_nodes,jobs,keys,"
           "members,meta,nodes");
  // Opening again neither migrates nor fails.
  auto again = open_ok(dir.path());
  CHECK(raw(dir.path(), "PRAGMA user_version") == "9");
}

TEST_CASE("the database (it holds pre-shared keys) is readable by its owner only" * doctest::test_suite("sqlite")) {
  temp_db dir;
  auto mode_of = [](const std::string& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 0777;
  };
  {
    auto s = open_ok(dir.path());
    CHECK(mode_of(dir.path()) == 0600);
    CHECK(mode_of(dir.path() + "-wal") == 0600);
  }
  // One made before, with the umask's 0644, is closed down when opened.
  ::chmod(dir.path().c_str(), 0644);
  auto s = open_ok(dir.path());
  CHECK(mode_of(dir.path()) == 0600);
}

TEST_CASE("a database from a newer server is refused" * doctest::test_suite("sqlite")) {
  temp_db dir;
  open_ok(dir.path());
  raw(dir.path(), "PRAGMA user_version = 10");
  std::string err;
  auto s = store::open(dir.path(), err);
  CHECK(s == nullptr);
  CHECK(err.find("database schema version 10 is newer than this server (9)")
        != std::string::npos);
  CHECK(err.find(dir.path()) != std::string::npos);
}

TEST_CASE("open reports an unusable path" * doctest::test_suite("sqlite")) {
  temp_db dir;
  std::string err;
  auto s = store::open(dir.dir + "/missing/dir/fleet.db", err);
  CHECK(s == nullptr);
  CHECK(err.find(dir.dir + "/missing/dir/fleet.db") != std::string::npos);
  CHECK(err.find("unable to open") != std::string::npos);
}

TEST_CASE("nodes: upsert keeps registered_at, updates the rest; reopen keeps them") {
  temp_db dir;
  {
    auto s = open_ok(dir.path());
    REQUIRE(s->apply({put_node{reg("n1", "alpha"), 1000, 1000, {}}, put_node{reg("n2"), 1100, 1100, {}}}));
    auto r = reg("n1", "beta");
    r.ip_address = "127.1.0.9";
    r.port = 6000;
    r.services = {};
    r.system_info = {{"os", model::scalar::of(std::string{"Alpine"})}};
    r.reported_status = "";
    r.reported_ip_address = "127.9.9.9";
    REQUIRE(s->apply({put_node{r, 5000, 5000, {}}}));
  }
  auto s = open_ok(dir.path());
  auto nodes = s->load_nodes();
  REQUIRE(nodes.size() == 2);
  const auto& a = nodes[0];
  CHECK(a.reg.node_id == "n1");
  CHECK(a.reg.hostname == "beta");
  CHECK(a.reg.ip_address == "127.1.0.9");
  CHECK(a.reg.port == 6000);
  CHECK(a.reg.services.empty());
  CHECK(a.reg.drivers == std::vector<std::string>{"i2c"});
  CHECK(a.reg.system_info == model::attributes{{"os", model::scalar::of(std::string{"Alpine"})}});
  CHECK(a.reg.reported_status.empty());
  CHECK(a.reg.reported_ip_address == "127.9.9.9");
  CHECK(a.registered_at == 1000);
  CHECK(a.last_seen == 5000);
  CHECK_FALSE(a.has_health);
  const auto& b = nodes[1];
  CHECK(b.reg.node_id == "n2");
  CHECK(b.reg.services == std::vector<std::string>{"sshd", "agent"});
  CHECK(b.reg.system_info == reg("n2").system_info);
  CHECK(b.reg.reported_status == "online");
  CHECK(b.reg.reported_ip_address.empty());
  CHECK(b.registered_at == 1100);
  CHECK(b.status == model::node_status::online);
}

TEST_CASE("health joins its node, updates last_seen, and skips unknown nodes") {
  temp_db dir;
  auto s = open_ok(dir.path());
  REQUIRE(s->apply({put_node{reg("n1"), 1000, 1000, {}}, put_node{reg("n2"), 1000, 1000, {}}}));
  model::health_report h;
  h.node_id = "n1";
  h.timestamp = "2025-09-17T10:00:00Z";
  h.overall_healthy = false;
  h.cpu_percent = 12.5;
  h.memory_percent = 40;
  h.temperature = 55.25;
  h.uptime_seconds = 3600;
  h.services_status = {{"sshd", true}, {"agent", false}};
  h.error_messages = {"agent down"};
  auto stray = h;
  stray.node_id = "ghost";
  auto first = h;
  first.cpu_percent = 99;
  REQUIRE(s->apply({put_health{first, 2000}, put_health{stray, 2500}, put_health{h, 3000}}));
  auto nodes = s->load_nodes();
  REQUIRE(nodes.size() == 2);  // no row for the ghost
  const auto& n = nodes[0];
  REQUIRE(n.has_health);
  CHECK(n.health_at == 3000);
  CHECK(n.last_seen == 3000);
  CHECK(n.registered_at == 1000);
  CHECK(n.health.node_id == "n1");
  CHECK(n.health.timestamp == h.timestamp);
  CHECK_FALSE(n.health.overall_healthy);
  CHECK(n.health.cpu_percent == 12.5);
  CHECK(n.health.memory_percent == 40);
  CHECK_FALSE(model::present(n.health.disk_percent));
  CHECK(n.health.temperature == 55.25);
  CHECK(n.health.uptime_seconds == 3600);
  CHECK(n.health.services_status == h.services_status);
  CHECK(n.health.error_messages == h.error_messages);
  CHECK_FALSE(nodes[1].has_health);
  CHECK(nodes[1].last_seen == 1000);
  CHECK(raw(dir.path(), "SELECT count(*) FROM health") == "1");
  // An older report coming late (from a node actor closed with reports
  // still queued) changes nothing: not the report, not last_seen.
  REQUIRE(s->apply({put_health{first, 2800}}));
  auto again = s->load_nodes();
  CHECK(again[0].health_at == 3000);
  CHECK(again[0].last_seen == 3000);
  CHECK(again[0].health.cpu_percent == 12.5);
  // One older by more than a minute is taken: the clock was set back.
  auto later = h;
  later.cpu_percent = 1;
  REQUIRE(s->apply({put_health{later, 200'000}}));
  auto reset = first;
  reset.cpu_percent = 2;
  REQUIRE(s->apply({put_health{reset, 100'000}}));
  auto stepped = s->load_nodes();
  CHECK(stepped[0].health.cpu_percent == 2);
  CHECK(stepped[0].health_at == 100'000);
  CHECK(stepped[0].last_seen == 100'000);
}

TEST_CASE("one node by id, and every node's brief without decoding its lists") {
  temp_db dir;
  auto s = open_ok(dir.path());
  REQUIRE(s->apply({put_node{reg("n1"), 1000, 1000, {}}, put_node{reg("n2"), 1100, 1100, {}},
                    put_node{reg("n3"), 1200, 1200, {}}, put_node{reg("n4"), 1300, 1300, {}}}));
  model::health_report sick;
  sick.node_id = "n1";
  sick.overall_healthy = false;
  sick.error_messages = {"agent down", "disk \"full\""};
  model::health_report fine;
  fine.node_id = "n2";
  fine.cpu_percent = 3;
  REQUIRE(s->apply({put_health{sick, 2000}, put_health{fine, 2500}}));
  // A report that is not JSON (written by hand) counts as healthy; the load goes on.
  CHECK(raw(dir.path(), "INSERT INTO health VALUES('n3', '{oops', 1500) RETURNING 1") == "1");
  auto one = s->load_node("n1");
  REQUIRE(one);
  CHECK(one->reg.hostname == "host");
  CHECK(one->health.error_messages == sick.error_messages);
  CHECK_FALSE(s->load_node("ghost"));
  auto briefs = s->load_briefs();
  REQUIRE(briefs.size() == 4);
  std::sort(briefs.begin(), briefs.end(),
            [](const auto& a, const auto& b) { return a.node_id < b.node_id; });
  CHECK(briefs[0].has_health);
  CHECK_FALSE(briefs[0].healthy);
  CHECK(briefs[0].error_messages == sick.error_messages);
  CHECK(briefs[0].last_seen == 2000);
  CHECK(briefs[0].registered_at == 1000);
  CHECK(briefs[0].ip_address == "127.1.0.1");
  CHECK(briefs[0].port == 5683);
  CHECK(briefs[1].has_health);
  CHECK(briefs[1].healthy);
  CHECK(briefs[1].error_messages.empty());
  CHECK(briefs[1].last_seen == 2500);
  CHECK(briefs[2].has_health);
  CHECK(briefs[2].healthy);
  CHECK_FALSE(briefs[3].has_health);
  CHECK(briefs[3].healthy);
}

TEST_CASE("repeated names that older versions stored still load" * doctest::test_suite("sqlite")) {
  // Requests with repeated member names are refused now; a database may
  // still hold health and attributes that were accepted with them.
  temp_db dir;
  auto s = open_ok(dir.path());
  auto r = reg("n1");
  r.system_info = {{"os", model::scalar::of(std::string{"a"})},
                   {"os", model::scalar::of(std::string{"b"})}};
  model::health_report h;
  h.node_id = "n1";
  h.services_status = {{"web", true}, {"web", false}};
  REQUIRE(s->apply({put_node{r, 1000, 1000, {}}, put_health{h, 2000}}));
  s.reset();
  auto again = open_ok(dir.path());
  auto nodes = again->load_nodes();
  CHECK(again->last_error().empty());
  REQUIRE(nodes.size() == 1);
  CHECK(nodes[0].reg.system_info.size() == 2);
  REQUIRE(nodes[0].has_health);
  CHECK(nodes[0].health.services_status == h.services_status);
}

TEST_CASE("jobs and node states round-trip exactly, in creation order") {
  temp_db dir;
  auto j1 = job("job-b", 1000);
  j1.spec.package_type = "pip";
  j1.spec.target_nodes = {"all"};
  j1.spec.timeout_seconds = 0;
  j1.spec.description.clear();
  auto j2 = job("job-a", 2000);
  j2.nodes = {state("n1", model::node_update_state::pending, -1, 0, "", 2000),
              state("n2", model::node_update_state::pending, -1, 0, "", 2000)};
  {
    auto s = open_ok(dir.path());
    REQUIRE(s->apply({put_job{j1}, put_job{j2}}));
    REQUIRE(s->apply({
        put_job_status{"job-a", model::job_status::in_progress, 2500, "",
                       model::campaign_state{1, true, "error threshold reached", 9000, false}},
        put_node_state{"job-a", state("n2", model::node_update_state::failed, 40, 8,
                                      "checksum mismatch", 2600)},
        put_node_state{"job-a", state("n1", model::node_update_state::downloading, 55, 0, "",
                                      2700)},
        put_node_state{"job-a", state("n0", model::node_update_state::skipped, -1, 0,
                                      "offline", 2100)},
        put_node_state{"no-such-job", state("n1", model::node_update_state::failed, 0, 0,
                                            "", 2100)},
        put_job_status{"job-b", model::job_status::cancelled, 3000, "cancelled by operator", {}},
    }));
  }
  j1.status = model::job_status::cancelled;
  j1.updated_at = 3000;
  j1.error_message = "cancelled by operator";
  j2.status = model::job_status::in_progress;
  j2.updated_at = 2500;
  j2.nodes = {state("n0", model::node_update_state::skipped, -1, 0, "offline", 2100),
              state("n1", model::node_update_state::downloading, 55, 0, "", 2700),
              state("n2", model::node_update_state::failed, 40, 8, "checksum mismatch", 2600)};
  auto s = open_ok(dir.path());
  auto jobs = s->load_jobs();
  REQUIRE(jobs.size() == 2);
  check_same(jobs[0], j1);  // job-b was created first
  check_same(jobs[1], j2);
  CHECK(jobs[1].campaign.wave == 1);
  CHECK(jobs[1].campaign.paused);
  CHECK(jobs[1].campaign.pause_reason == "error threshold reached");
  CHECK(jobs[1].campaign.soak_until == 9000);
  CHECK_FALSE(jobs[0].campaign.paused);
  CHECK(s->last_error().empty());
  CHECK(raw(dir.path(), "SELECT status FROM jobs WHERE job_id = 'job-b'") == "cancelled");
  CHECK(raw(dir.path(), "SELECT status FROM job_nodes WHERE node_id = 'n2'") == "failed");
  CHECK(raw(dir.path(), "SELECT name || '/' || version || '/' || package_type FROM jobs"
                            " WHERE job_id = 'job-a'")
        == "config job-a/1.2.3/file");
}

TEST_CASE("attempts round-trip; the history holds every change of state or attempt") {
  temp_db dir;
  auto j = job("job-h", 1000);
  j.nodes = {state("n1", model::node_update_state::pending, -1, 0, "", 1000)};
  j.nodes[0].started_at = 1000;
  auto step = [](model::node_update_state st, int32_t progress, model::millis at,
                 uint32_t attempt = 1) {
    auto n = state("n1", st, progress, 0, "", at);
    n.attempt = attempt;
    n.started_at = attempt == 1 ? 1000 : 5000;
    return n;
  };
  {
    auto s = open_ok(dir.path());
    REQUIRE(s->apply({put_job{j}}));
    REQUIRE(s->apply({put_node_state{"job-h", step(model::node_update_state::downloading, 10, 2000)},
                      put_node_state{"job-h", step(model::node_update_state::downloading, 60, 2100)},
                      put_node_state{"job-h", step(model::node_update_state::failed, 60, 3000)}}));
    // A retry: the same state again would not be history, a new attempt is.
    REQUIRE(s->apply({put_node_state{"job-h", step(model::node_update_state::pending, -1, 5000, 2)}}));
  }
  auto s = open_ok(dir.path());
  auto jobs = s->load_jobs();
  REQUIRE(jobs.size() == 1);
  REQUIRE(jobs[0].nodes.size() == 1);
  CHECK(jobs[0].nodes[0].attempt == 2);
  CHECK(jobs[0].nodes[0].started_at == 5000);
  std::string agg = dir.pg() ? "string_agg(status || '@' || at || '#' || attempt, ',')"
                             : "group_concat(status || '@' || at || '#' || attempt, ',')";
  CHECK(raw(dir.path(), "SELECT " + agg
                            + " FROM (SELECT * FROM job_history WHERE node_id = 'n1' ORDER BY seq) h")
        == "pending@1000#1,downloading@2000#1,failed@3000#1,pending@5000#2");
}

TEST_CASE("history: pages by node and job, newest first; trimmed by age") {
  temp_db dir;
  auto s = open_ok(dir.path());
  auto j = job("job-t", 1000);
  j.nodes = {state("a", model::node_update_state::pending, -1, 0, "", 1000),
             state("b", model::node_update_state::pending, -1, 0, "", 1000)};
  REQUIRE(s->apply({put_job{j}}));
  REQUIRE(s->apply({put_node_state{"job-t", state("a", model::node_update_state::notified, -1, 0,
                                                  "", 5000)},
                    put_node_state{"job-t", state("a", model::node_update_state::succeeded, 100,
                                                  1, "", 9000)}}));
  model::history_page page;
  REQUIRE(s->history_page({false, "a", 0, 2}, page));
  REQUIRE(page.entries.size() == 2);
  CHECK(page.entries[0].state == model::node_update_state::succeeded);
  CHECK(page.entries[1].state == model::node_update_state::notified);
  REQUIRE(page.next == page.entries[1].seq);
  REQUIRE(s->history_page({false, "a", page.next, 2}, page));
  REQUIRE(page.entries.size() == 1);
  CHECK(page.next == 0);
  REQUIRE(s->history_page({true, "job-t", 0, 100}, page));
  CHECK(page.entries.size() == 4);
  uint64_t dropped = 0;
  REQUIRE(s->trim_history(5000, dropped));
  CHECK(dropped == 2);  // the two pending rows at 1000
  REQUIRE(s->history_page({true, "job-t", 0, 100}, page));
  CHECK(page.entries.size() == 2);
}

TEST_CASE("a batch commits atomically, a failing one rolls back entirely") {
  temp_db dir;
  auto s = open_ok(dir.path());
  std::vector<write_op> batch;
  for (int i = 0; i < 200; ++i)
    batch.emplace_back(put_node{reg("n" + std::to_string(i)), 1000, 1000, {}});
  batch.emplace_back(put_job{job("j1")});
  REQUIRE(s->apply(batch));
  CHECK(s->load_nodes().size() == 200);

  auto dup = job("j1", 9000);
  dup.spec.name = "other";
  bool ok = s->apply({
      put_node{reg("late"), 5000, 5000, {}},
      put_node{reg("n7", "renamed"), 5000, 5000, {}},
      put_job_status{"j1", model::job_status::failed, 5000, "boom", {}},
      put_job{job("j2", 5000)},
      put_job{dup},  // duplicate job_id: the whole batch fails
      put_node{reg("never"), 5000, 5000, {}},
  });
  CHECK_FALSE(ok);
  CHECK(s->last_error().find(dir.pg() ? "duplicate key value violates unique constraint"
                                       : "UNIQUE constraint failed")
        != std::string::npos);
  CHECK(s->last_error().find(dir.path()) != std::string::npos);
  auto nodes = s->load_nodes();
  CHECK(nodes.size() == 200);
  for (const auto& n : nodes) {
    CHECK(n.reg.node_id != "late");
    CHECK(n.reg.hostname == "host");
  }
  auto jobs = s->load_jobs();
  REQUIRE(jobs.size() == 1);
  check_same(jobs[0], job("j1"));

  // The store is usable after a failed batch (statements were reset).
  REQUIRE(s->apply({put_job{job("j2", 6000)}, put_node{reg("late"), 6000, 6000, {}}}));
  CHECK(s->load_jobs().size() == 2);
  CHECK(s->load_nodes().size() == 201);
  CHECK(s->apply({}));
}

TEST_CASE("checkpoint truncates the WAL" * doctest::test_suite("sqlite")) {
  temp_db dir;
  auto s = open_ok(dir.path());
  REQUIRE(s->apply({put_node{reg("n1"), 1, 1, {}}}));
  struct stat st {};
  REQUIRE(stat((dir.path() + "-wal").c_str(), &st) == 0);
  CHECK(st.st_size > 0);
  s->checkpoint();
  CHECK(s->last_error().empty());
  REQUIRE(stat((dir.path() + "-wal").c_str(), &st) == 0);
  CHECK(st.st_size == 0);
  CHECK(s->load_nodes().size() == 1);
}

TEST_CASE("an applied batch survives kill -9 of the writer") {
  temp_db dir;
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {  // child: no doctest here, only _exit
    close(fds[0]);
    std::string err;
    auto s = store::open(dir.path(), err);
    auto j = job("j1");
    j.nodes = {state("n1", model::node_update_state::pending, -1, 0, "", 1000)};
    char ack = s && s->apply({put_node{reg("n1"), 1000, 1000, {}}, put_job{j}}) ? 'k' : 'x';
    if (write(fds[1], &ack, 1) != 1)
      _exit(2);
    for (;;)
      pause();  // still holding the database open when killed
  }
  close(fds[1]);
  char ack = 0;
  REQUIRE(read(fds[0], &ack, 1) == 1);
  close(fds[0]);
  kill(pid, SIGKILL);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status));
  REQUIRE(ack == 'k');
  auto s = open_ok(dir.path());
  auto nodes = s->load_nodes();
  REQUIRE(nodes.size() == 1);
  CHECK(nodes[0].reg.node_id == "n1");
  auto jobs = s->load_jobs();
  REQUIRE(jobs.size() == 1);
  REQUIRE(jobs[0].nodes.size() == 1);
  CHECK(jobs[0].nodes[0].node_id == "n1");
}

TEST_CASE("10,000 node writes in one transaction") {
  temp_db dir;
  auto s = open_ok(dir.path());
  std::vector<write_op> batch;
  for (int i = 0; i < 10000; ++i) {
    auto r = reg("node-" + std::to_string(i));
    r.ip_address = "127.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    batch.emplace_back(put_node{std::move(r), 1000, 1000, {}});
  }
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(s->apply(batch));
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0);
  MESSAGE("10,000 put_node in one apply(): " << ms.count() << " ms");
  t0 = std::chrono::steady_clock::now();
  CHECK(s->load_nodes().size() == 10000);
  ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0);
  MESSAGE("load_nodes() of 10,000: " << ms.count() << " ms");
}
