#include "store/members.hpp"

#include "store/db.hpp"

namespace coapfleet::server {

namespace {

/// `text` with every "now_ms" replaced by the engine's clock expression.
std::string with_now(std::string text, bool pg) {
  auto now = store_now_sql(pg);
  for (size_t at; (at = text.find("now_ms")) != std::string::npos;)
    text.replace(at, 6, now);
  return text;
}

constexpr const char* bump_epoch =
  "UPDATE meta SET value = value + 1 WHERE name = 'member_epoch' RETURNING value";

constexpr const char* upsert_member =
  "INSERT INTO members(member_id, cluster_endpoint, coap_endpoint, epoch, lease_ms,"
  " started_at, heartbeat_at) VALUES(?1, ?2, ?3, ?4, ?5, now_ms, now_ms)"
  " ON CONFLICT(member_id) DO UPDATE SET cluster_endpoint = excluded.cluster_endpoint,"
  " coap_endpoint = excluded.coap_endpoint, epoch = excluded.epoch,"
  " lease_ms = excluded.lease_ms, started_at = excluded.started_at,"
  " heartbeat_at = excluded.heartbeat_at"
  " RETURNING started_at, heartbeat_at";

// Only while the lease holds: a lapsed one is not revived.
constexpr const char* renew_member =
  "UPDATE members SET heartbeat_at = now_ms, nodes = ?3, jobs = ?4"
  " WHERE member_id = ?1 AND epoch = ?2 AND heartbeat_at > now_ms - lease_ms";

constexpr const char* list_members =
  "SELECT member_id, cluster_endpoint, coap_endpoint, epoch, lease_ms, started_at,"
  " heartbeat_at, now_ms - heartbeat_at, nodes, jobs FROM members ORDER BY member_id";

constexpr const char* leave_member =
  "UPDATE members SET heartbeat_at = 0 WHERE member_id = ?1 AND epoch = ?2";

}  // namespace

std::string store_now_sql(bool postgresql) {
  return postgresql ? "(CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT))"
                    : "(CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))";
}

std::unique_ptr<member_table> member_table::open(const std::string& location,
                                                 std::string& error) {
  std::unique_ptr<member_table> t{new member_table};
  t->path_ = db::redacted(location);
  bool pg = db::is_postgresql(location);
  t->db_ = pg ? db::open_postgresql(location, false, error)
              : db::open_sqlite(location, false, error);
  if (!t->db_)
    return nullptr;
  t->db_->set_timeout(2000);
  for (auto [slot, text] : {std::pair{&t->bump_, bump_epoch}, {&t->upsert_, upsert_member},
                            {&t->renew_, renew_member}, {&t->list_, list_members},
                            {&t->leave_, leave_member}}) {
    *slot = t->db_->prepare(with_now(text, pg).c_str());
    if (!*slot) {
      error = t->path_ + ": " + t->db_->error();
      return nullptr;
    }
  }
  return t;
}

member_table::~member_table() {
  bump_.reset();
  upsert_.reset();
  renew_.reset();
  list_.reset();
  leave_.reset();
}

bool member_table::fail(const std::string& what) {
  error_ = path_ + ": " + what + ": " + db_->error();
  return false;
}

void member_table::set_timeout(int ms) {
  db_->set_timeout(ms);
}

bool member_table::join(member_row& me) {
  if (!db_->healthy())
    return fail("cannot reach the store");
  if (!db_->exec("BEGIN"))
    return fail("cannot begin");
  bool ok = bump_->step() == db::step_result::row;
  int64_t epoch = ok ? bump_->integer(0) : 0;
  bump_->reset();
  if (ok) {
    upsert_->bind_text(1, me.member_id);
    upsert_->bind_text(2, me.cluster_endpoint);
    upsert_->bind_text(3, me.coap_endpoint);
    upsert_->bind_int(4, epoch);
    upsert_->bind_int(5, me.lease_ms);
    ok = upsert_->step() == db::step_result::row;
    if (ok) {
      me.started_at = upsert_->integer(0);
      me.heartbeat_at = upsert_->integer(1);
    }
    upsert_->reset();
  }
  if (!ok || !db_->exec("COMMIT")) {
    fail("cannot join");
    if (db_->in_transaction())
      db_->exec("ROLLBACK");
    return false;
  }
  me.epoch = static_cast<uint64_t>(epoch);
  me.live = true;
  return true;
}

member_table::renewal member_table::renew(const std::string& member_id, uint64_t epoch,
                                          uint32_t nodes, uint32_t jobs) {
  if (!db_->healthy()) {
    fail("cannot reach the store");
    return renewal::failed;
  }
  renew_->bind_text(1, member_id);
  renew_->bind_int(2, static_cast<int64_t>(epoch));
  renew_->bind_int(3, nodes);
  renew_->bind_int(4, jobs);
  auto rc = renew_->step();
  renew_->reset();
  if (rc == db::step_result::error) {
    fail("cannot renew the lease");
    return renewal::failed;
  }
  return db_->changes() == 1 ? renewal::renewed : renewal::fenced;
}

bool member_table::list(std::vector<member_row>& out) {
  out.clear();
  if (!db_->healthy())
    return fail("cannot reach the store");
  db::step_result rc;
  while ((rc = list_->step()) == db::step_result::row) {
    member_row m;
    m.member_id = list_->text(0);
    m.cluster_endpoint = list_->text(1);
    m.coap_endpoint = list_->text(2);
    m.epoch = static_cast<uint64_t>(list_->integer(3));
    m.lease_ms = list_->integer(4);
    m.started_at = list_->integer(5);
    m.heartbeat_at = list_->integer(6);
    m.heartbeat_age_ms = list_->integer(7);
    m.nodes = static_cast<uint32_t>(list_->integer(8));
    m.jobs = static_cast<uint32_t>(list_->integer(9));
    m.live = m.heartbeat_at > 0 && m.heartbeat_age_ms < m.lease_ms;
    out.push_back(std::move(m));
  }
  list_->reset();
  if (rc != db::step_result::done) {
    out.clear();
    return fail("cannot list the members");
  }
  return true;
}

bool member_table::leave(const std::string& member_id, uint64_t epoch) {
  if (!db_->healthy())
    return fail("cannot reach the store");
  leave_->bind_text(1, member_id);
  leave_->bind_int(2, static_cast<int64_t>(epoch));
  auto rc = leave_->step();
  leave_->reset();
  return rc != db::step_result::error || fail("cannot leave");
}

}  // namespace coapfleet::server
