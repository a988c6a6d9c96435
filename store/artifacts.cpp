#include "store/artifacts.hpp"

#include <algorithm>

#include "common/sha256.hpp"
#include "store/db.hpp"

namespace coapfleet::server {

namespace {

constexpr const char* list_artifacts =
  "SELECT name, size, sha256, uploaded_at FROM artifacts WHERE deleted_at IS NULL"
  " ORDER BY name";

constexpr const char* find_artifact =
  "SELECT name, size, sha256, uploaded_at FROM artifacts"
  " WHERE name = ?1 AND deleted_at IS NULL";

constexpr const char* known_artifact = "SELECT 1 FROM artifacts WHERE name = ?1";

// Chunks are written with their description, in one transaction: the first
// one present means all are.
constexpr const char* has_content =
  "SELECT 1 FROM artifact_chunks WHERE sha256 = ?1 AND seq = 0";

constexpr const char* put_chunk =
  "INSERT INTO artifact_chunks(sha256, seq, data) VALUES(?1, ?2, ?3)"
  " ON CONFLICT(sha256, seq) DO NOTHING";

constexpr const char* upsert_artifact =
  "INSERT INTO artifacts(name, size, sha256, uploaded_at) VALUES(?1, ?2, ?3, ?4)"
  " ON CONFLICT(name) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256,"
  " uploaded_at = excluded.uploaded_at, deleted_at = NULL";

// A deleted artifact keeps its name (see artifacts.hpp), with no content.
constexpr const char* delete_artifact =
  "UPDATE artifacts SET size = 0, sha256 = '', deleted_at = ?2"
  " WHERE name = ?1 AND deleted_at IS NULL";

constexpr const char* drop_unnamed =
  "DELETE FROM artifact_chunks WHERE sha256 = ?1"
  " AND NOT EXISTS (SELECT 1 FROM artifacts WHERE sha256 = ?1)";

constexpr const char* read_chunks =
  "SELECT seq, data FROM artifact_chunks WHERE sha256 = ?1 ORDER BY seq";

model::artifact_info described(db::statement& s) {
  model::artifact_info a;
  a.name = s.text(0);
  a.size = s.integer(1);
  a.sha256 = s.text(2);
  a.uploaded_at = s.integer(3);
  return a;
}

/// Runs a statement that returns no rows; false on error.
bool run(db::statement& s) {
  auto rc = s.step();
  s.reset();
  return rc != db::step_result::error;
}

}  // namespace

std::unique_ptr<artifact_table> artifact_table::open(const std::string& location,
                                                     std::string& error) {
  std::unique_ptr<artifact_table> t{new artifact_table};
  t->path_ = db::redacted(location);
  t->pg_ = db::is_postgresql(location);
  t->db_ = t->pg_ ? db::open_postgresql(location, false, error)
                  : db::open_sqlite(location, false, error);
  if (!t->db_)
    return nullptr;
  t->db_->set_timeout(10000);
  for (auto [slot, text] :
       {std::pair{&t->list_, list_artifacts}, {&t->find_, find_artifact},
        {&t->known_, known_artifact}, {&t->has_content_, has_content}, {&t->put_chunk_, put_chunk},
        {&t->upsert_, upsert_artifact}, {&t->delete_, delete_artifact},
        {&t->drop_unnamed_, drop_unnamed}, {&t->read_, read_chunks}}) {
    *slot = t->db_->prepare(text);
    if (!*slot) {
      error = t->path_ + ": " + t->db_->error();
      return nullptr;
    }
  }
  return t;
}

artifact_table::~artifact_table() {
  for (auto* s : {&list_, &find_, &known_, &has_content_, &put_chunk_, &upsert_, &delete_,
                  &drop_unnamed_, &read_})
    s->reset();
}

bool artifact_table::fail(const std::string& what) {
  error_ = path_ + ": " + what + ": " + db_->error();
  return false;
}

void artifact_table::set_timeout(int ms) {
  db_->set_timeout(ms);
}

// Writers take turns (a lock readers do not wait for): a write sees every
// description committed before it, so it never deletes content that a
// description committed meanwhile names.
bool artifact_table::begin() {
  if (!db_->healthy())
    return fail("cannot reach the store");
  if (!pg_)
    return db_->exec("BEGIN IMMEDIATE") || fail("cannot begin");
  return (db_->exec("BEGIN") && db_->exec("LOCK TABLE artifacts IN SHARE ROW EXCLUSIVE MODE"))
         || rollback("cannot begin");
}

bool artifact_table::rollback(const std::string& what) {
  fail(what);
  if (db_->in_transaction())
    db_->exec("ROLLBACK");
  return false;
}

bool artifact_table::list(std::vector<model::artifact_info>& out) {
  out.clear();
  if (!db_->healthy())
    return fail("cannot reach the store");
  db::step_result rc;
  while ((rc = list_->step()) == db::step_result::row)
    out.push_back(described(*list_));
  list_->reset();
  if (rc != db::step_result::done) {
    out.clear();
    return fail("cannot list the artifacts");
  }
  return true;
}

bool artifact_table::find(const std::string& name, model::artifact_info& out, bool& found) {
  found = false;
  if (!db_->healthy())
    return fail("cannot reach the store");
  find_->bind_text(1, name);
  auto rc = find_->step();
  if (rc == db::step_result::row) {
    out = described(*find_);
    found = true;
  }
  find_->reset();
  return rc != db::step_result::error || fail("cannot read artifact " + name);
}

bool artifact_table::known(const std::string& name, bool& ever) {
  ever = false;
  if (!db_->healthy())
    return fail("cannot reach the store");
  known_->bind_text(1, name);
  auto rc = known_->step();
  ever = rc == db::step_result::row;
  known_->reset();
  return rc != db::step_result::error || fail("cannot read artifact " + name);
}

bool artifact_table::put(const model::artifact_info& a, std::string_view body) {
  bool added = false;
  return write(a, body, false, added);
}

bool artifact_table::add_if_new(const model::artifact_info& a, std::string_view body,
                                bool& added) {
  return write(a, body, true, added);
}

bool artifact_table::write(const model::artifact_info& a, std::string_view body, bool only_new,
                           bool& added) {
  added = false;
  mismatch_ = false;
  // Content is stored under its own SHA-256, never under what it is said to be.
  if (static_cast<int64_t>(body.size()) != a.size || common::sha256_hex(body) != a.sha256) {
    mismatch_ = true;
    error_ = path_ + ": the content of artifact " + a.name + " is not the version described";
    return false;
  }
  if (!begin())
    return false;
  if (only_new) {
    bool ever = false;
    known_->bind_text(1, a.name);
    auto rc = known_->step();
    ever = rc == db::step_result::row;
    known_->reset();
    if (rc == db::step_result::error)
      return rollback("cannot read artifact " + a.name);
    if (ever)  // stored (or deleted) by a member since it was looked up
      return db_->exec("ROLLBACK") || fail("cannot end the transaction");
  }
  model::artifact_info before;
  bool replaced = false;
  find_->bind_text(1, a.name);
  auto rc = find_->step();
  if (rc == db::step_result::row) {
    before = described(*find_);
    replaced = true;
  }
  find_->reset();
  if (rc == db::step_result::error)
    return rollback("cannot read artifact " + a.name);
  has_content_->bind_text(1, a.sha256);
  rc = has_content_->step();
  bool stored = rc == db::step_result::row;
  has_content_->reset();
  if (rc == db::step_result::error)
    return rollback("cannot read artifact " + a.name);
  // An empty artifact has one empty chunk: every content has a chunk 0.
  for (size_t at = 0, seq = 0; !stored && (at < body.size() || seq == 0); at += chunk_size, ++seq) {
    put_chunk_->bind_text(1, a.sha256);
    put_chunk_->bind_int(2, static_cast<int64_t>(seq));
    put_chunk_->bind_blob(3, body.substr(at, std::min(chunk_size, body.size() - at)));
    if (!run(*put_chunk_))
      return rollback("cannot store artifact " + a.name);
  }
  upsert_->bind_text(1, a.name);
  upsert_->bind_int(2, a.size);
  upsert_->bind_text(3, a.sha256);
  upsert_->bind_int(4, a.uploaded_at);
  if (!run(*upsert_))
    return rollback("cannot store artifact " + a.name);
  if (replaced && before.sha256 != a.sha256) {
    drop_unnamed_->bind_text(1, before.sha256);
    if (!run(*drop_unnamed_))
      return rollback("cannot store artifact " + a.name);
  }
  if (!db_->exec("COMMIT"))
    return rollback("cannot commit artifact " + a.name);
  added = true;
  return true;
}

bool artifact_table::remove(const std::string& name, model::millis at, bool& found) {
  found = false;
  if (!begin())
    return false;
  find_->bind_text(1, name);
  auto rc = find_->step();
  model::artifact_info before;
  if (rc == db::step_result::row) {
    before = described(*find_);
    found = true;
  }
  find_->reset();
  if (rc == db::step_result::error)
    return rollback("cannot read artifact " + name);
  if (!found)
    return db_->exec("ROLLBACK") || fail("cannot end the transaction");
  delete_->bind_text(1, name);
  delete_->bind_int(2, at);
  drop_unnamed_->bind_text(1, before.sha256);
  if (!run(*delete_) || !run(*drop_unnamed_))
    return rollback("cannot delete artifact " + name);
  return db_->exec("COMMIT") || rollback("cannot commit the deletion of artifact " + name);
}

bool artifact_table::read(const model::artifact_info& a, std::string& body) {
  body.clear();
  mismatch_ = false;
  if (!db_->healthy())
    return fail("cannot reach the store");
  if (a.size < 0)
    return fail("artifact " + a.name + " has a negative size");
  body.reserve(static_cast<size_t>(a.size));
  common::sha256 digest;
  read_->bind_text(1, a.sha256);
  db::step_result rc;
  int64_t expected = 0;
  bool in_order = true;
  while ((rc = read_->step()) == db::step_result::row) {
    if (read_->integer(0) != expected++) {
      in_order = false;
      break;
    }
    auto chunk = read_->blob(1);
    if (body.size() + chunk.size() > static_cast<size_t>(a.size)) {
      in_order = false;
      break;
    }
    digest.update(chunk);
    body += chunk;
  }
  read_->reset();
  if (rc == db::step_result::error) {
    body.clear();
    return fail("cannot read artifact " + a.name);
  }
  if (!in_order || expected == 0 || static_cast<int64_t>(body.size()) != a.size
      || digest.hex() != a.sha256) {
    body.clear();
    mismatch_ = true;
    error_ = path_ + ": the store's content of artifact " + a.name
             + " is not the version described (size " + std::to_string(a.size) + ", SHA-256 "
             + a.sha256 + ")";
    return false;
  }
  return true;
}

}  // namespace coapfleet::server
