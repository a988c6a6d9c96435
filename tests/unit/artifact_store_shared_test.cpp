// The artifact stores of a cluster's members share their artifacts through
// the store: an upload through one is acknowledged once the store has it,
// every member copies it, a deletion reaches every member, and a member's
// files from before it shared its store are added to it. The members here
// are artifact stores on one database (the fixture's, SQLite: the table is
// the same on both engines, store_artifacts_test.cpp).
#include "actor_fixture.hpp"

#include <fstream>
#include <set>

#include "common/sha256.hpp"
#include "store/artifacts.hpp"

using namespace coapfleet;
using namespace coapfleet::actor_test;

namespace {

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
  REQUIRE(out.good());
}

/// Artifact stores of members sharing the fixture's database.
struct members_fixture : fixture {
  std::vector<artifact_store_actor> spawned;

  ~members_fixture() {
    for (auto& m : spawned)
      caf::anon_send_exit(m, caf::exit_reason::user_shutdown);
    sched->run();
  }

  std::string store_location() const { return (dir / "fleet.db").string(); }

  artifact_store_actor member(const std::string& name, std::string store = {}) {
    auto cfg = artifact_config(dir / name);
    cfg.shared_store = store.empty() ? store_location() : store;
    cfg.refresh = std::chrono::hours(1);  // refreshed by hand
    auto m = server::spawn_artifact_store(*sys, cfg, transport);
    sched->run();
    spawned.push_back(m);
    return m;
  }

  void refresh(const artifact_store_actor& m) {
    caf::anon_send(m, atom::refresh::value);
    sched->run();
  }

  std::set<std::string> listed(const artifact_store_actor& m) {
    std::set<std::string> out;
    for (auto& a : ask<std::vector<artifact_info>>(m, atom::list::value))
      out.insert(a.name + "=" + a.sha256);
    return out;
  }

  std::string served(const artifact_store_actor& m, const std::string& name) {
    auto blob = ask<artifact_blob>(m, atom::get::value, name);
    REQUIRE(blob.bytes);
    return {reinterpret_cast<const char*>(blob.bytes->data()), blob.bytes->size()};
  }
};

std::string entry(const std::string& name, const std::string& body) {
  return name + "=" + common::sha256_hex(body);
}

}  // namespace

TEST_CASE_FIXTURE(members_fixture,
                  "an upload through one member is served, listed and deleted by every member") {
  auto m1 = member("m1"), m2 = member("m2"), m3 = member("m3");
  auto fw = ask<artifact_info>(m1, atom::upload::value, artifact_upload{"fw.bin", "v1", {}});
  CHECK(fw.sha256 == common::sha256_hex("v1"));
  // Before any refresh: m2 describes it for a job and serves it at once ...
  CHECK(ask<artifact_info>(m2, atom::info::value, std::string("fw.bin")).sha256 == fw.sha256);
  CHECK(read_text(dir / "m2" / "fw.bin") == "v1");
  CHECK(served(m3, "fw.bin") == "v1");
  // ... and lists it.
  ask<artifact_info>(m3, atom::upload::value, artifact_upload{"app.tar", "app", {}});
  CHECK(listed(m1) == std::set<std::string>{entry("fw.bin", "v1"), entry("app.tar", "app")});
  CHECK(listed(m2) == listed(m1));
  // A replacement through m2: m1 describes the new version at once, and
  // serves it from its refresh on.
  ask<artifact_info>(m2, atom::upload::value, artifact_upload{"fw.bin", "v2", {}});
  CHECK(ask<artifact_info>(m1, atom::info::value, std::string("fw.bin")).sha256
        == common::sha256_hex("v2"));
  refresh(m3);
  CHECK(served(m3, "fw.bin") == "v2");
  CHECK(read_text(dir / "m3" / "fw.bin") == "v2");
  // A deletion through m3: gone for every member, its files removed.
  wire->forgotten.clear();
  ask<atom::ok>(m3, atom::remove::value, std::string("fw.bin"));
  CHECK(is_api_error(ask_error<artifact_info>(m1, atom::info::value, std::string("fw.bin")),
                     api_errc::not_found));
  refresh(m1);
  refresh(m2);
  CHECK_FALSE(std::filesystem::exists(dir / "m1" / "fw.bin"));
  CHECK_FALSE(std::filesystem::exists(dir / "m2" / "fw.bin"));
  CHECK(std::count(wire->forgotten.begin(), wire->forgotten.end(), "artifact fw.bin") == 3);
  CHECK(listed(m2) == std::set<std::string>{entry("app.tar", "app")});
  // Deleting it again through another member: 4.04.
  CHECK(is_api_error(ask_error<atom::ok>(m2, atom::remove::value, std::string("fw.bin")),
                     api_errc::not_found));
}

TEST_CASE_FIXTURE(members_fixture,
                  "a member's files the store never had are added; ones it deleted are dropped") {
  std::string err;
  auto table = server::artifact_table::open(store_location(), err);
  REQUIRE_MESSAGE(table, err);
  // Deleted from the store while the member was away.
  artifact_info gone;
  gone.name = "gone.bin";
  gone.size = 4;
  gone.sha256 = common::sha256_hex("gone");
  gone.uploaded_at = 1;
  REQUIRE(table->put(gone, "gone"));
  bool found = false;
  REQUIRE(table->remove("gone.bin", 2, found));
  // A server's files from before it shared its store.
  std::filesystem::create_directories(dir / "m1");
  write_text(dir / "m1" / "old.bin", "old");
  write_text(dir / "m1" / "gone.bin", "gone");
  auto m1 = member("m1");
  CHECK(listed(m1) == std::set<std::string>{entry("old.bin", "old")});
  CHECK_FALSE(std::filesystem::exists(dir / "m1" / "gone.bin"));
  std::vector<artifact_info> stored;
  REQUIRE(table->list(stored));
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].name == "old.bin");
  // Another member copies it from the store.
  auto m2 = member("m2");
  CHECK(read_text(dir / "m2" / "old.bin") == "old");
}

TEST_CASE_FIXTURE(members_fixture,
                  "without the shared store an upload is refused and nothing is kept") {
  auto away = member("m1", (dir / "no-such-dir" / "fleet.db").string());
  auto err = ask_error<artifact_info>(away, atom::upload::value,
                                      artifact_upload{"fw.bin", "v1", {}});
  CHECK(is_api_error(err, api_errc::unavailable));
  CHECK_FALSE(std::filesystem::exists(dir / "m1" / "fw.bin"));
  CHECK(ask<std::vector<artifact_info>>(away, atom::list::value).empty());
  CHECK(is_api_error(ask_error<artifact_info>(away, atom::info::value, std::string("fw.bin")),
                     api_errc::not_found));
  CHECK(is_api_error(ask_error<atom::ok>(away, atom::remove::value, std::string("fw.bin")),
                     api_errc::unavailable));
}
