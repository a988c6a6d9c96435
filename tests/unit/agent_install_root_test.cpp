// File jobs stay inside the agent's install root, on real temporary trees
// with symbolic links: the directories beneath the root (common/beneath.hpp)
// through both resolvers, the kernel's openat2 with RESOLVE_BENEATH (links
// followed only while they stay beneath the root) and the walk used where
// there is no openat2 (no link followed); then install_file on such trees,
// and the refusal of setuid, setgid and sticky modes unless allowed.
#include "actors/agent/handlers.hpp"
#include "common/beneath.hpp"
#include "common/sha256.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace coapfleet;
using namespace coapfleet::agent;
using common::beneath_resolver;
namespace fs = std::filesystem;

namespace {

/// A fresh directory from mkdtemp, removed with its content at the end.
struct temp_dir {
  std::string path;
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "agent_install_root_test.XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  REQUIRE(out.good());
  out << content;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Names in a directory, sorted.
std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

/// Every path under `dir` (files, directories, links), sorted, relative.
std::vector<std::string> tree(const std::string& dir) {
  std::vector<std::string> out;
  if (!fs::exists(fs::symlink_status(dir))) return out;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it)
    out.push_back(fs::relative(it->path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

handler_config config_in(const temp_dir& t) {
  handler_config cfg;
  cfg.state_dir = t.path;
  cfg.root = t / "root";
  return cfg;
}

const std::string sha_abc = common::sha256_hex("abc");

/// A root with links in it, and a directory outside it:
///   root/opt/app/        a directory
///   root/opt/current  -> app            (relative, stays beneath the root)
///   root/opt/up       -> ../../outside  (climbs above the root)
///   root/opt/abs      -> <root>/opt/app (absolute, into the root)
///   root/opt/out      -> <outside>      (absolute, out of the root)
///   root/etc/file        a regular file
///   outside/
struct tree_fixture {
  fs::path base;
  fs::path root;
  fs::path outside;
  int root_fd = -1;

  tree_fixture() {
    std::string tmpl = (fs::temp_directory_path() / "agent_beneath_test.XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    base = tmpl;
    root = base / "root";
    outside = base / "outside";
    fs::create_directories(root / "opt/app");
    fs::create_directories(root / "etc");
    fs::create_directories(outside);
    { FILE* f = std::fopen((root / "etc/file").c_str(), "w"); REQUIRE(f); std::fclose(f); }
    fs::create_directory_symlink("app", root / "opt/current");
    fs::create_directory_symlink("../../outside", root / "opt/up");
    fs::create_directory_symlink(root / "opt/app", root / "opt/abs");
    fs::create_directory_symlink(outside, root / "opt/out");
    root_fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    REQUIRE(root_fd >= 0);
  }
  ~tree_fixture() {
    ::close(root_fd);
    std::error_code ec;
    fs::remove_all(base, ec);
  }
  tree_fixture(const tree_fixture&) = delete;
  tree_fixture& operator=(const tree_fixture&) = delete;

  common::beneath_result open(const std::vector<std::string>& parts, bool create,
                              beneath_resolver how) {
    return common::open_directory_beneath(root_fd, parts, create, how);
  }

  /// The inode of what an fd refers to, to tell which directory was opened.
  static ino_t inode_of(int fd) {
    struct stat st {};
    REQUIRE(::fstat(fd, &st) == 0);
    return st.st_ino;
  }
  static ino_t inode_of(const fs::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_ino;
  }
  bool outside_empty() const { return fs::is_empty(outside); }
};

}  // namespace

TEST_CASE("beneath: both resolvers open and create plain directories beneath the root") {
  for (auto how : {beneath_resolver::walk, beneath_resolver::automatic}) {
    tree_fixture t;
    auto r = t.open({"opt", "app"}, false, how);
    REQUIRE(r.fd >= 0);
    CHECK(tree_fixture::inode_of(r.fd) == tree_fixture::inode_of(t.root / "opt/app"));
    ::close(r.fd);

    r = t.open({}, false, how);  // the root itself
    REQUIRE(r.fd >= 0);
    CHECK(tree_fixture::inode_of(r.fd) == tree_fixture::inode_of(t.root));
    ::close(r.fd);

    // Missing without create: ENOENT, nothing made.
    r = t.open({"var", "lib"}, false, how);
    CHECK(r.fd < 0);
    CHECK(r.err == ENOENT);
    CHECK_FALSE(r.outside);
    CHECK_FALSE(fs::exists(t.root / "var"));

    r = t.open({"var", "lib", "app"}, true, how);
    REQUIRE(r.fd >= 0);
    CHECK(fs::is_directory(t.root / "var/lib/app"));
    CHECK(tree_fixture::inode_of(r.fd) == tree_fixture::inode_of(t.root / "var/lib/app"));
    ::close(r.fd);

    // A file on the way.
    r = t.open({"etc", "file", "sub"}, true, how);
    CHECK(r.fd < 0);
    CHECK(r.err == ENOTDIR);
    CHECK(r.error.find("/etc/file") != std::string::npos);
  }
}

TEST_CASE("beneath: links that leave the root, or are absolute, are refused by both resolvers") {
  for (auto how : {beneath_resolver::walk, beneath_resolver::automatic}) {
    for (const char* link : {"up", "out", "abs"}) {
      CAPTURE(link);
      tree_fixture t;
      auto r = t.open({"opt", link, "new", "dir"}, true, how);
      CHECK(r.fd < 0);
      CHECK(r.outside);
      CHECK(r.error.find(std::string("/opt/") + link) != std::string::npos);
      CHECK(t.outside_empty());
      CHECK(fs::is_empty(t.root / "opt/app"));
      CHECK_FALSE(fs::exists(t.root / "new"));
    }
  }
}

TEST_CASE("beneath: a link that stays beneath the root is followed by openat2, refused by the walk") {
  tree_fixture t;
  auto r = t.open({"opt", "current", "conf.d"}, true, beneath_resolver::walk);
  CHECK(r.fd < 0);
  CHECK(r.outside);
  CHECK(r.err == ELOOP);
  CHECK(r.error.find("/opt/current") != std::string::npos);
  CHECK(r.error.find("openat2") != std::string::npos);
  CHECK(fs::is_empty(t.root / "opt/app"));

  auto k = t.open({"opt", "current", "conf.d"}, true, beneath_resolver::kernel);
  auto a = t.open({"opt", "current", "conf.d"}, true, beneath_resolver::automatic);
  if (common::kernel_resolves_beneath()) {
    // Followed, and the missing directory made where the link leads.
    REQUIRE(k.fd >= 0);
    CHECK(fs::is_directory(t.root / "opt/app/conf.d"));
    CHECK(tree_fixture::inode_of(k.fd) == tree_fixture::inode_of(t.root / "opt/app/conf.d"));
    REQUIRE(a.fd >= 0);
    CHECK(tree_fixture::inode_of(a.fd) == tree_fixture::inode_of(k.fd));
    ::close(k.fd);
    ::close(a.fd);
  } else {
    // No openat2 on this kernel: `kernel` says so, `automatic` walks.
    CHECK(k.fd < 0);
    CHECK(k.err == ENOSYS);
    CHECK(a.fd < 0);
    CHECK(a.err == ELOOP);
    CHECK(fs::is_empty(t.root / "opt/app"));
  }
}

TEST_CASE("beneath: the kernel resolver refuses absolute and climbing links with EXDEV") {
  const bool has_openat2 = common::kernel_resolves_beneath();
  for (const char* link : {"up", "out", "abs"}) {
    CAPTURE(link);
    tree_fixture t;
    auto r = t.open({"opt", link}, true, beneath_resolver::kernel);
    CHECK(r.fd < 0);
    if (has_openat2) {
      CHECK(r.err == EXDEV);
      CHECK(r.outside);
      CHECK(r.error.find("above the install root") != std::string::npos);
    } else {
      CHECK(r.err == ENOSYS);  // and `automatic` walks, as the cases above show
    }
    CHECK(t.outside_empty());
  }
}

// -- install_file on such trees --------------------------------------------------------

TEST_CASE("handlers: install_file refuses a target_path through a link that leaves the root") {
  temp_dir t;
  auto cfg = config_in(t);
  fs::create_directories(t / "root/opt");
  fs::create_directories(t / "outside");
  write_file(t / "download.bin", "abc");
  // An absolute link out of the root, and a relative one that climbs above it.
  fs::create_directory_symlink(t / "outside", t / "root/opt/link");
  fs::create_directory_symlink("../../outside", t / "root/opt/up");
  const auto before = tree(t / "root");
  model::job_spec spec;
  spec.package_type = "file";
  for (const char* target : {"/opt/link/app.conf", "/opt/link/new/dir/app.conf",
                             "/opt/up/app.conf", "//opt/./link/app.conf"}) {
    CAPTURE(target);
    spec.target_path = target;
    auto out = install_file(spec, t / "download.bin", sha_abc, cfg);
    INFO(out.error_message);
    CHECK_FALSE(out.ok);
    CHECK(out.result == 7);  // invalid URI, as for ".."
    CHECK(has(out.error_message, "install root"));
    CHECK((has(out.error_message, "/opt/link") || has(out.error_message, "/opt/up")));
    CHECK(tree(t / "outside").empty());  // nothing written outside
    CHECK(tree(t / "root") == before);   // nor inside
  }
}

TEST_CASE("handlers: install_file refuses a path through an absolute link, even one into the root") {
  temp_dir t;
  auto cfg = config_in(t);
  fs::create_directories(t / "root/srv/v1");
  fs::create_directories(t / "root/opt");
  // No "..": an absolute link is read from the machine's "/", not the root's.
  fs::create_directory_symlink(t / "root/srv/v1", t / "root/opt/abs");
  write_file(t / "download.bin", "abc");
  model::job_spec spec;
  spec.target_path = "/opt/abs/app.conf";
  auto out = install_file(spec, t / "download.bin", sha_abc, cfg);
  INFO(out.error_message);
  CHECK_FALSE(out.ok);
  CHECK(out.result == 7);
  CHECK(has(out.error_message, "/opt/abs"));
  CHECK(tree(t / "root/srv/v1").empty());
}

TEST_CASE("handlers: install_file follows a link that stays beneath the root (with openat2)") {
  temp_dir t;
  auto cfg = config_in(t);
  fs::create_directories(t / "root/opt/releases/v2");
  fs::create_directory_symlink("releases/v2", t / "root/opt/current");
  write_file(t / "download.bin", "abc");
  model::job_spec spec;
  spec.target_path = "/opt/current/conf.d/app.conf";
  auto out = install_file(spec, t / "download.bin", sha_abc, cfg);
  INFO(out.error_message);
  if (common::kernel_resolves_beneath()) {
    CHECK(out.ok);
    CHECK(read_file(t / "root/opt/releases/v2/conf.d/app.conf") == "abc");
    CHECK(fs::is_symlink(t / "root/opt/current"));
  } else {
    // Without openat2 no link is followed at all.
    CHECK_FALSE(out.ok);
    CHECK(out.result == 7);
    CHECK(has(out.error_message, "/opt/current"));
    CHECK(tree(t / "root/opt/releases/v2").empty());
  }
}

TEST_CASE("handlers: a link at the target's own name is replaced, not followed") {
  temp_dir t;
  auto cfg = config_in(t);
  fs::create_directories(t / "root/etc");
  write_file(t / "victim", "precious\n");
  fs::create_symlink(t / "victim", t / "root/etc/app.conf");
  write_file(t / "download.bin", "abc");
  model::job_spec spec;
  spec.target_path = "/etc/app.conf";
  auto out = install_file(spec, t / "download.bin", sha_abc, cfg);
  INFO(out.error_message);
  CHECK(out.ok);
  CHECK(read_file(t / "victim") == "precious\n");
  CHECK(fs::is_regular_file(fs::symlink_status(t / "root/etc/app.conf")));
  CHECK(read_file(t / "root/etc/app.conf") == "abc");
  CHECK(list_dir(t / "root/etc") == std::vector<std::string>{"app.conf"});
}

TEST_CASE("handlers: setuid, setgid and sticky modes are refused unless allowed") {
  temp_dir t;
  auto cfg = config_in(t);
  write_file(t / "download.bin", "abc");
  model::job_spec spec;
  spec.package_type = "file";
  spec.target_path = "/usr/bin/tool";
  for (const char* mode : {"4755", "2755", "1755", "6755", "04755", "7777"}) {
    CAPTURE(mode);
    spec.mode = mode;
    auto out = install_file(spec, t / "download.bin", sha_abc, cfg);
    INFO(out.error_message);
    CHECK_FALSE(out.ok);
    CHECK(out.result == 8);
    CHECK(has(out.error_message, mode));
    CHECK(has(out.error_message, "--allow-setid"));
    CHECK_FALSE(fs::exists(t / "root"));  // nothing written
  }
  spec.mode = "4755";
  CHECK(has(install_file(spec, t / "download.bin", sha_abc, cfg).error_message, "setuid bit"));
  spec.mode = "2755";
  CHECK(has(install_file(spec, t / "download.bin", sha_abc, cfg).error_message, "setgid bit"));
  spec.mode = "1755";
  CHECK(has(install_file(spec, t / "download.bin", sha_abc, cfg).error_message, "sticky bit"));
  spec.mode = "6755";
  CHECK(has(install_file(spec, t / "download.bin", sha_abc, cfg).error_message,
            "setuid and setgid bits"));

  // The same check before any download.
  spec.mode = "4755";
  auto pre = check_file_job(spec, cfg);
  CHECK_FALSE(pre.ok);
  CHECK(pre.result == 8);
  spec.mode = "0755";
  CHECK(check_file_job(spec, cfg).ok);
  spec.target_path = "/a/../b";
  CHECK(check_file_job(spec, cfg).result == 7);

  // Allowed: the bits are kept.
  cfg.allow_setid = true;
  spec.target_path = "/usr/bin/tool";
  for (mode_t mode : {04755, 02755, 01755}) {
    char text[8];
    std::snprintf(text, sizeof text, "%o", static_cast<unsigned>(mode));
    CAPTURE(text);
    spec.mode = text;
    CHECK(check_file_job(spec, cfg).ok);
    auto out = install_file(spec, t / "download.bin", sha_abc, cfg);
    INFO(out.error_message);
    CHECK(out.ok);
    struct stat st {};
    REQUIRE(stat((t / "root/usr/bin/tool").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == mode);
  }
}
