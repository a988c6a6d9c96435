// The store: migrations, prepared statements, group commit, loads, on
// SQLite or PostgreSQL (store/db.hpp). Only the persistence actor uses it,
// from one thread. The SQL text is in store_sql.cpp.
#include "store/store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <strings.h>

#include <cstdlib>
#include <exception>
#include <unordered_map>

#include "model/json.hpp"
#include "store/members.hpp"
#include "store/store_internal.hpp"

namespace coapfleet::server {

bool store::statements::migrate() {
  if (pg())
    return migrate_postgresql();
  std::string v;
  if (!query_text("PRAGMA user_version", v))
    return false;
  int version = std::atoi(v.c_str());
  if (version == schema_version)
    return true;
  bool ok = true;
  // Take the write lock, then look again: another process may have migrated.
  if (version < schema_version) {
    if (!exec("BEGIN IMMEDIATE", "cannot begin migration"))
      return false;
    ok = query_text("PRAGMA user_version", v);
    version = std::atoi(v.c_str());
  }
  if (ok && version > schema_version) {
    self.error_ = self.path_ + ": database schema version " + std::to_string(version)
                  + " is newer than this server (" + std::to_string(schema_version) + ")";
    ok = false;
  }
  if (ok && version < 1)
    ok = exec(sql::schema_v1, "cannot create schema v1");
  if (ok && version < 2)
    ok = exec(sql::schema_v2, "cannot migrate the schema to v2 (keys)");
  if (ok && version < 3)
    ok = exec(sql::schema_v3, "cannot migrate the schema to v3 (audit)");
  if (ok && version < 4)
    ok = exec(sql::schema_v4, "cannot migrate the schema to v4 (reported addresses)");
  if (ok && version < 5)
    ok = exec(sql::schema_v5, "cannot migrate the schema to v5 (attempts, history)");
  if (ok && version < 6)
    ok = exec(sql::schema_v6, "cannot migrate the schema to v6 (labels, inventory)");
  if (ok && version < 7)
    ok = exec(sql::schema_v7, "cannot migrate the schema to v7 (cluster members)");
  if (ok && version < 8)
    ok = exec(sql::schema_v8, "cannot migrate the schema to v8 (job holders)");
  if (ok && version < 9)
    ok = exec(sql::schema_v9, "cannot migrate the schema to v9 (artifacts)");
  return finish_migration(ok);
}

bool store::statements::finish_migration(bool ok) {
  if (ok && self.db_->in_transaction())
    ok = exec("COMMIT", "cannot commit migration");
  if (!ok && self.db_->in_transaction()) {
    std::string keep = self.error_;
    self.db_->exec("ROLLBACK");
    self.error_ = keep;
  }
  return ok;
}

// PostgreSQL: members that start together take turns (an advisory lock
// held by the migrating transaction); the version is a row of meta.
bool store::statements::migrate_postgresql() {
  bool ok = exec("BEGIN", "cannot begin migration")
            && exec("SELECT pg_advisory_xact_lock(5683001)", "cannot lock for migration")
            && exec("CREATE TABLE IF NOT EXISTS meta (name TEXT COLLATE \"C\" PRIMARY KEY,"
                    " value BIGINT NOT NULL)",
                    "cannot create the meta table");
  std::string v;
  ok = ok && query_text("SELECT value FROM meta WHERE name = 'schema_version'", v);
  int version = std::atoi(v.c_str());
  if (ok && version > schema_version) {
    self.error_ = self.path_ + ": database schema version " + std::to_string(version)
                  + " is newer than this server (" + std::to_string(schema_version) + ")";
    ok = false;
  }
  if (ok && v.empty()) {
    ok = exec(sql::pg::schema_current, "cannot create the schema")
         && exec("INSERT INTO meta(name, value) VALUES('schema_version', 7)",
                 "cannot record the schema version");
    version = 7;  // schema_current is v7's; later versions migrate from it
  }
  if (ok && version < 8)
    ok = exec(sql::pg::schema_v8, "cannot migrate the schema to v8 (job holders)")
         && exec("UPDATE meta SET value = 8 WHERE name = 'schema_version'",
                 "cannot record the schema version");
  if (ok && version < 9)
    ok = exec(sql::pg::schema_v9, "cannot migrate the schema to v9 (artifacts)")
         && exec("UPDATE meta SET value = 9 WHERE name = 'schema_version'",
                 "cannot record the schema version");
  return finish_migration(ok);
}

bool store::statements::prepare_all() {
  return prepare(begin, pg() ? "BEGIN" : "BEGIN IMMEDIATE") && prepare(commit, "COMMIT")
         && prepare(rollback, "ROLLBACK") && prepare(ping, "SELECT 1")
         && (pg() || prepare(checkpoint, "PRAGMA wal_checkpoint(TRUNCATE)"))
         && prepare(upsert_node, sql::upsert_node)
         && prepare(upsert_health, sql::upsert_health)
         && prepare(touch_node, sql::touch_node)
         && prepare(insert_job, pg() ? sql::pg::insert_job : sql::insert_job)
         && prepare(update_job, sql::update_job)
         && prepare(upsert_state, sql::upsert_state)
         && prepare(select_nodes, sql::select_nodes)
         && prepare(select_node, sql::select_node)
         && prepare(select_briefs, pg() ? sql::pg::select_briefs : sql::select_briefs)
         && prepare(select_jobs, sql::select_jobs)
         && prepare(select_states, sql::select_states)
         && prepare(delete_job, "DELETE FROM jobs WHERE job_id = ?1")
         && prepare(delete_node, "DELETE FROM nodes WHERE node_id = ?1")
         && prepare(update_traits, sql::update_traits) && prepare_keys()
         && prepare_audit() && prepare_history() && prepare_holders();
}

bool store::statements::write(const put_node& op) {
  const auto& r = op.reg;
  bind(upsert_node, 1, r.node_id);
  bind_opt(upsert_node, 2, r.hostname);
  bind(upsert_node, 3, r.ip_address);
  bind(upsert_node, 4, int64_t{r.port});
  bind(upsert_node, 5, model::encode_strings(r.services));
  bind(upsert_node, 6, model::encode_strings(r.drivers));
  bind(upsert_node, 7, model::encode_attributes(r.system_info));
  bind_opt(upsert_node, 8, r.reported_status);
  bind(upsert_node, 9, op.registered_at);
  bind(upsert_node, 10, op.last_seen);
  bind_opt(upsert_node, 11, r.reported_ip_address);
  bind_map(upsert_node, 12, r.labels);
  bind_map(upsert_node, 13, r.inventory);
  bind_map(upsert_node, 14, op.operator_labels);
  return run(upsert_node, "cannot store node");
}

bool store::statements::write(const model::put_node_traits& op) {
  bind(update_traits, 1, op.node_id);
  bind_map(update_traits, 2, op.labels);
  bind_map(update_traits, 3, op.inventory);
  bind_map(update_traits, 4, op.operator_labels);
  return run(update_traits, "cannot store labels and inventory");
}

bool store::statements::write(const put_health& op) {
  bind(upsert_health, 1, op.health.node_id);
  bind(upsert_health, 2, model::encode_health_report(op.health));
  bind(upsert_health, 3, op.at);
  if (!run(upsert_health, "cannot store health"))
    return false;
  if (self.db_->changes() == 0)
    return true;  // unknown node, or older than the stored report: skipped
  bind(touch_node, 1, op.health.node_id);
  bind(touch_node, 2, op.at);
  return run(touch_node, "cannot update last_seen");
}

bool store::statements::write(const put_job& op) {
  const auto& j = op.job;
  bind(insert_job, 1, j.job_id);
  bind(insert_job, 2, j.spec.name);
  bind(insert_job, 3, j.spec.version);
  bind(insert_job, 4, j.spec.package_type);
  bind(insert_job, 5, model::encode_job_spec(j.spec));
  bind(insert_job, 6, std::string{model::to_string(j.status)});
  bind(insert_job, 7, j.created_at);
  bind(insert_job, 8, j.updated_at);
  bind_opt(insert_job, 9, j.error_message);
  bind(insert_job, 10, model::encode_campaign_state(j.campaign));
  if (!run(insert_job, "cannot store job"))
    return false;
  for (const auto& st : j.nodes)
    if (!write_state(j.job_id, st))
      return false;
  return true;
}

bool store::statements::write(const put_job_status& op) {
  bind(update_job, 1, op.job_id);
  bind(update_job, 2, std::string{model::to_string(op.status)});
  bind(update_job, 3, op.updated_at);
  bind_opt(update_job, 4, op.error_message);
  bind(update_job, 5, model::encode_campaign_state(op.campaign));
  return run(update_job, "cannot store job status");
}

bool store::statements::write(const put_node_state& op) {
  return write_state(op.job_id, op.state);
}

bool store::statements::write(const model::drop_node& op) {
  bind(delete_node, 1, op.node_id);  // its health goes with it (ON DELETE CASCADE)
  return run(delete_node, "cannot delete node");
}

bool store::statements::write(const drop_job& op) {
  bind(delete_job, 1, op.job_id);  // job_nodes go with it (ON DELETE CASCADE)
  return run(delete_job, "cannot delete job");
}

bool store::statements::write_state(const std::string& job_id,
                                    const model::node_job_state& st) {
  bind(upsert_state, 1, job_id);
  bind(upsert_state, 2, st.node_id);
  bind(upsert_state, 3, std::string{model::to_string(st.state)});
  bind(upsert_state, 4, int64_t{st.progress});
  bind(upsert_state, 5, int64_t{st.result});
  bind_opt(upsert_state, 6, st.error_message);
  bind(upsert_state, 7, st.updated_at);
  bind(upsert_state, 8, int64_t{st.attempt});
  bind(upsert_state, 9, st.started_at);
  bind(upsert_state, 10, int64_t{st.wave});
  bind(upsert_state, 11, st.retry_at);
  return run(upsert_state, "cannot store node state");
}

// -- store -------------------------------------------------------------------

namespace {

/// The database holds the fleet's pre-shared keys: only its owner may read
/// it (SQLite gives its -wal and -shm files the database file's mode).
void restrict_mode(const std::string& path) {
  if (path == ":memory:")
    return;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) {
    struct stat st_mode {};
    if (::fstat(fd, &st_mode) == 0 && (st_mode.st_mode & 077) != 0)
      ::fchmod(fd, st_mode.st_mode & 0700);
    ::close(fd);
  }
  for (const char* suffix : {"-wal", "-shm"})
    ::chmod((path + suffix).c_str(), 0600);  // when they exist from before
}

}  // namespace

bool store::statements::setup_sqlite() {
  std::string mode;
  if (!query_text("PRAGMA journal_mode = WAL", mode))
    return false;
  if (strcasecmp(mode.c_str(), "wal") != 0) {
    self.error_ = self.path_ + ": cannot switch to WAL journal mode (still '" + mode + "')";
    return false;
  }
  // FULL: in WAL mode every commit syncs the WAL, so an acknowledged write
  // survives kill -9 and a power loss.
  std::string sync;
  if (!exec("PRAGMA synchronous = FULL", "cannot set synchronous = FULL")
      || !query_text("PRAGMA synchronous", sync))
    return false;
  if (sync != "2") {  // 2 = FULL
    self.error_ = self.path_ + ": cannot set synchronous = FULL (still " + sync + ")";
    return false;
  }
  return exec("PRAGMA foreign_keys = ON", "cannot enable foreign keys");
}

std::unique_ptr<store> store::open(const std::string& location, std::string& error) {
  std::unique_ptr<store> self{new store};
  bool pg = db::is_postgresql(location);
  self->path_ = db::redacted(location);
  if (!pg)
    restrict_mode(location);
  // PostgreSQL commits durably by default (synchronous_commit = on): an
  // acknowledged write survives the loss of a member and of the server's
  // process; the database's own replication protects it beyond that.
  self->db_ = pg ? db::open_postgresql(location, false, error)
                 : db::open_sqlite(location, false, error);
  if (!self->db_)
    return nullptr;
  self->st_ = std::make_unique<statements>(*self);
  auto& st = *self->st_;
  if ((!pg && !st.setup_sqlite()) || !st.migrate() || !st.prepare_all()) {
    error = self->error_;
    return nullptr;
  }
  return self;
}

store::~store() {
  st_.reset();  // finalize every statement before closing
}

bool store::set_fence(const std::string& member_id, uint64_t epoch, int64_t lease_ms) {
  fence_member_ = member_id;
  fence_epoch_ = epoch;
  if (member_id.empty()) {
    st_->fence = nullptr;
    return true;
  }
  if (lease_ms > 0 && fence_lease_ms_ == 0) {
    fence_lease_ms_ = lease_ms;
    // A store that does not answer fails a commit well within the lease.
    db_->set_timeout(static_cast<int>(std::max<int64_t>(lease_ms / 2, 200)));
    auto idle = std::to_string(std::max<int64_t>(lease_ms / 4, 100));
    if (!db_->add_session_setting("SET idle_in_transaction_session_timeout = " + idle))
      return st_->fail("cannot bound idle transactions");
  }
  if (st_->fence)
    return true;
  // At least half the lease left (members renew every third of it).
  auto text = "SELECT 1 FROM members WHERE member_id = ?1 AND epoch = ?2 AND heartbeat_at > "
              + store_now_sql(postgresql()) + " - lease_ms / 2";
  return st_->prepare(st_->fence, text.c_str());
}

bool store::check_fence() {
  auto s = st_->fence;
  s->bind_text(1, fence_member_);
  s->bind_int(2, static_cast<int64_t>(fence_epoch_));
  auto rc = s->step();
  s->reset();
  if (rc == db::step_result::error)
    return st_->fail("cannot check the member's lease");
  if (rc == db::step_result::row)
    return true;
  fenced_ = true;
  error_ = path_ + ": fenced: the lease of member " + fence_member_ + " (epoch "
           + std::to_string(fence_epoch_) + ") is no longer valid; nothing was written";
  return false;
}

bool store::names_postgresql(const std::string& location) {
  return db::is_postgresql(location);
}

bool store::postgresql() const {
  return db_->kind() == db::engine::postgresql;
}

bool store::apply(const std::vector<write_op>& ops) {
  if (ops.empty())
    return true;
  auto& st = *st_;
  audited_.clear();
  fenced_ = false;
  bool ok = st.transaction([&] {
    try {
      for (const auto& op : ops)
        if (!std::visit([&st](const auto& o) { return st.write(o); }, op))
          return false;
    } catch (const std::exception& e) {
      error_ = path_ + ": " + e.what();
      return false;
    }
    // The lease, checked last: right before COMMIT.
    return (audited_.empty() || st.prune_audit()) && (!st.fence || check_fence());
  });
  if (!ok)
    audited_.clear();  // rolled back: none of them was stored
  return ok;
}

std::vector<model::job_record> store::load_jobs() {
  db_->healthy();  // a lost connection is replaced between calls, never within one
  std::vector<model::job_record> out;
  std::unordered_map<std::string, size_t> index;
  auto s = st_->select_jobs;
  db::step_result rc;
  while ((rc = s->step()) == db::step_result::row) {
    model::job_record j;
    j.job_id = column_text(s, 0);
    st_->take(model::decode_job_spec(column_text(s, 1)), j.spec, "spec", j.job_id);
    if (!model::from_string(column_text(s, 2), j.status))
      error_ = path_ + ": bad status of job " + j.job_id;
    j.created_at = s->integer(3);
    j.updated_at = s->integer(4);
    j.error_message = column_text(s, 5);
    if (!s->is_null(6))  // jobs of older servers have none
      st_->take(model::decode_campaign_state(column_text(s, 6)), j.campaign, "campaign",
                j.job_id);
    index.emplace(j.job_id, out.size());
    out.push_back(std::move(j));
  }
  if (rc != db::step_result::done)
    st_->fail("cannot load jobs");
  s->reset();
  s = st_->select_states;
  while ((rc = s->step()) == db::step_result::row) {
    auto i = index.find(column_text(s, 0));
    if (i == index.end())
      continue;
    model::node_job_state n;
    n.node_id = column_text(s, 1);
    if (!model::from_string(column_text(s, 2), n.state))
      error_ = path_ + ": bad status of node " + n.node_id + " in job " + i->first;
    n.progress = static_cast<int>(s->integer(3));
    n.result = static_cast<int>(s->integer(4));
    n.error_message = column_text(s, 5);
    n.updated_at = s->integer(6);
    n.attempt = static_cast<uint32_t>(std::max<int64_t>(1, s->integer(7)));
    n.started_at = s->integer(8);
    n.wave = static_cast<int>(s->integer(9));
    n.retry_at = s->integer(10);
    out[i->second].nodes.push_back(std::move(n));
  }
  if (rc != db::step_result::done)
    st_->fail("cannot load job node states");
  s->reset();
  return out;
}

void store::set_busy_timeout(int ms) {
  db_->set_timeout(ms);
}

bool store::ping() {
  db_->healthy();  // a lost connection is replaced between calls, never within one
  auto s = st_->ping;
  bool ok = s && s->step() == db::step_result::row && static_cast<int>(s->integer(0)) == 1;
  if (!ok)
    st_->fail("ping failed");
  if (s)
    s->reset();
  return ok;
}

void store::checkpoint() {
  auto s = st_->checkpoint;
  if (!s)
    return;
  db::step_result rc;
  while ((rc = s->step()) == db::step_result::row) {
  }
  if (rc != db::step_result::done)
    st_->fail("checkpoint failed");
  s->reset();
}

}  // namespace coapfleet::server
