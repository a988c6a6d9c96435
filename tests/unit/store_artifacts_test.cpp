// Artifacts in the store (what a cluster's members share), on SQLite and
// PostgreSQL: contents in chunks keyed by SHA-256, one transaction a write,
// deleted names remembered.
#include <doctest/doctest.h>

#include "common/sha256.hpp"
#include "store/artifacts.hpp"
#include "store/store.hpp"
#include "store_fixture.hpp"

using namespace coapfleet;
using namespace coapfleet::server;
using namespace coapfleet::server::testing;

namespace {

std::unique_ptr<artifact_table> table_ok(const std::string& path) {
  std::string err;
  auto t = artifact_table::open(path, err);
  INFO(err);
  REQUIRE(t != nullptr);
  return t;
}

model::artifact_info described(const std::string& name, const std::string& body,
                               model::millis at = 1000) {
  model::artifact_info a;
  a.name = name;
  a.size = static_cast<int64_t>(body.size());
  a.sha256 = common::sha256_hex(body);
  a.uploaded_at = at;
  return a;
}

/// `n` bytes of every value, NUL included.
std::string bytes(size_t n, unsigned seed) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i)
    out[i] = static_cast<char>((i * 131 + seed * 7 + (i >> 11)) & 0xff);
  return out;
}

std::string chunks_of(const temp_db& db, const std::string& sha256) {
  return raw(db.path(), "SELECT count(*) FROM artifact_chunks WHERE sha256 = '" + sha256 + "'");
}

}  // namespace

TEST_CASE("artifacts in the store: what one handle stores, another lists and reads whole") {
  temp_db db;
  { auto s = open_ok(db.path()); }
  auto writer = table_ok(db.path());
  auto reader = table_ok(db.path());
  // Three and a half chunks, every byte value; one empty artifact.
  auto big = bytes(3 * artifact_table::chunk_size + artifact_table::chunk_size / 2, 1);
  REQUIRE(writer->put(described("fw.bin", big, 2000), big));
  REQUIRE(writer->put(described("empty.bin", ""), ""));
  std::vector<model::artifact_info> all;
  REQUIRE(reader->list(all));
  REQUIRE(all.size() == 2);
  CHECK(all[0].name == "empty.bin");
  CHECK(all[1].name == "fw.bin");
  CHECK(all[1].size == static_cast<int64_t>(big.size()));
  CHECK(all[1].sha256 == common::sha256_hex(big));
  CHECK(all[1].uploaded_at == 2000);
  CHECK(chunks_of(db, all[1].sha256) == "4");
  std::string body;
  REQUIRE(reader->read(all[1], body));
  CHECK(body == big);
  REQUIRE(reader->read(all[0], body));
  CHECK(body.empty());
  model::artifact_info found;
  bool present = false;
  REQUIRE(reader->find("fw.bin", found, present));
  CHECK(present);
  CHECK(found.sha256 == all[1].sha256);
  REQUIRE(reader->find("other.bin", found, present));
  CHECK_FALSE(present);
}

TEST_CASE("artifacts in the store: a replacement drops the old content unless another name has it") {
  temp_db db;
  { auto s = open_ok(db.path()); }
  auto t = table_ok(db.path());
  auto v1 = bytes(100, 1), v2 = bytes(artifact_table::chunk_size + 1, 2);
  REQUIRE(t->put(described("a.bin", v1), v1));
  REQUIRE(t->put(described("b.bin", v1), v1));  // the same content: one copy
  auto sha1 = common::sha256_hex(v1), sha2 = common::sha256_hex(v2);
  CHECK(chunks_of(db, sha1) == "1");
  REQUIRE(t->put(described("a.bin", v2), v2));
  CHECK(chunks_of(db, sha1) == "1");  // b.bin still names it
  CHECK(chunks_of(db, sha2) == "2");
  REQUIRE(t->put(described("b.bin", v2), v2));
  CHECK(chunks_of(db, sha1) == "0");
  CHECK(chunks_of(db, sha2) == "2");
  std::string body;
  model::artifact_info a;
  bool present = false;
  REQUIRE(t->find("b.bin", a, present));
  REQUIRE(t->read(a, body));
  CHECK(body == v2);
  // A description read before a replacement no longer matches the content.
  CHECK_FALSE(t->read(described("a.bin", v1), body));
  CHECK(body.empty());
  CHECK(t->last_error().find("not the version described") != std::string::npos);
}

TEST_CASE("artifacts in the store: a deleted name is remembered, without its content") {
  temp_db db;
  { auto s = open_ok(db.path()); }
  auto t = table_ok(db.path());
  auto v = bytes(5000, 3);
  REQUIRE(t->put(described("fw.bin", v), v));
  bool found = false, ever = false;
  REQUIRE(t->remove("fw.bin", 3000, found));
  CHECK(found);
  CHECK(chunks_of(db, common::sha256_hex(v)) == "0");
  std::vector<model::artifact_info> all;
  REQUIRE(t->list(all));
  CHECK(all.empty());
  model::artifact_info a;
  REQUIRE(t->find("fw.bin", a, found));
  CHECK_FALSE(found);
  REQUIRE(t->known("fw.bin", ever));
  CHECK(ever);
  REQUIRE(t->known("never.bin", ever));
  CHECK_FALSE(ever);
  // Deleting again, or what never was, finds nothing and fails nothing.
  REQUIRE(t->remove("fw.bin", 3001, found));
  CHECK_FALSE(found);
  REQUIRE(t->remove("never.bin", 3001, found));
  CHECK_FALSE(found);
  // An upload brings the name back.
  REQUIRE(t->put(described("fw.bin", v, 4000), v));
  REQUIRE(t->find("fw.bin", a, found));
  CHECK(found);
  CHECK(a.uploaded_at == 4000);
  std::string body;
  REQUIRE(t->read(a, body));
  CHECK(body == v);
}

TEST_CASE("artifacts in the store: content is stored only as what it is; an import never replaces") {
  temp_db db;
  { auto s = open_ok(db.path()); }
  auto t = table_ok(db.path());
  // Described as another version (same size): refused, nothing stored.
  auto v1 = bytes(4000, 1), v2 = bytes(4000, 2);
  CHECK_FALSE(t->put(described("fw.bin", v1), v2));
  CHECK(t->content_mismatch());
  std::vector<model::artifact_info> all;
  REQUIRE(t->list(all));
  CHECK(all.empty());
  CHECK(chunks_of(db, common::sha256_hex(v1)) == "0");
  // An import of a name the store never had is taken ...
  bool added = false;
  REQUIRE(t->add_if_new(described("fw.bin", v1), v1, added));
  CHECK(added);
  CHECK_FALSE(t->content_mismatch());
  // ... but never over one it has, or deleted.
  REQUIRE(t->add_if_new(described("fw.bin", v2), v2, added));
  CHECK_FALSE(added);
  bool found = false;
  REQUIRE(t->remove("fw.bin", 5, found));
  REQUIRE(t->add_if_new(described("fw.bin", v2), v2, added));
  CHECK_FALSE(added);
  REQUIRE(t->list(all));
  CHECK(all.empty());
  CHECK(chunks_of(db, common::sha256_hex(v2)) == "0");
  // A read that finds other content says so (the store did answer).
  REQUIRE(t->put(described("app.bin", v1), v1));
  std::string body;
  CHECK_FALSE(t->read(described("app.bin", v2), body));
  CHECK(t->content_mismatch());
}

TEST_CASE("artifacts in the store: a v8 database gets the tables" * doctest::test_suite("sqlite")) {
  temp_db db;
  { auto s = open_ok(db.path()); }
  undo_v9(db.path());
  REQUIRE(raw(db.path(), "PRAGMA user_version") == "8");
  { auto s = open_ok(db.path()); }
  CHECK(raw(db.path(), "PRAGMA user_version") == "9");
  auto t = table_ok(db.path());
  REQUIRE(t->put(described("fw.bin", "abc"), "abc"));
  std::vector<model::artifact_info> all;
  REQUIRE(t->list(all));
  CHECK(all.size() == 1);
}

TEST_CASE("artifacts in the store: PostgreSQL keeps chunks out of line, uncompressed"
          * doctest::test_suite("postgresql")) {
  temp_db db;
  REQUIRE(db.pg());
  { auto s = open_ok(db.path()); }
  CHECK(raw(db.path(), "SELECT attstorage FROM pg_attribute WHERE attrelid ="
                       " 'artifact_chunks'::regclass AND attname = 'data'")
        == "e");
  CHECK(raw(db.path(), "SELECT value FROM meta WHERE name = 'schema_version'") == "9");
}
