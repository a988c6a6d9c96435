// The artifact store's own files: the start's scan of its directory (the
// artifacts, their metadata in .store/, the old layout moved there) and the
// removal of an artifact's metadata.
#include <dirent.h>

#include "actors/server/artifact_store_internal.hpp"
#include "common/log.hpp"
#include "common/sha256.hpp"
#include "model/json.hpp"

namespace coapfleet::server::artifacts_internal {

namespace {

std::string read_file(const std::string& path) {
  std::string out;
  common::read_file(path, out);
  return out;
}

using model::valid_artifact_name;

/// Metadata of `name` as earlier versions kept it, beside the artifacts.
constexpr std::string_view old_meta_prefix = ".meta-", old_meta_suffix = ".json";

/// Size and SHA-256 of the file at `path`, read now.
bool measure(const std::string& path, artifact_info& a) {
  std::string err;
  auto m = mapped_file::open(path, err);
  if (!m) {
    CF_WARN("artifact-store", "cannot read ", path, ": ", err);
    return false;
  }
  a.size = static_cast<int64_t>(m->size());
  a.sha256 =
    common::sha256_hex(std::string_view(reinterpret_cast<const char*>(m->data()), m->size()));
  return true;
}

/// The artifact an old-layout metadata file name describes ("" if none).
std::string old_meta_of(const std::string& file) {
  auto n = old_meta_prefix.size(), m = old_meta_suffix.size();
  if (file.size() <= n + m || file.compare(0, n, old_meta_prefix) != 0
      || file.compare(file.size() - m, m, old_meta_suffix) != 0)
    return {};
  auto name = file.substr(n, file.size() - n - m);
  return valid_artifact_name(name) ? name : std::string{};
}

/// A temporary file an interrupted atomic write left (".<name>.tmp.XXXXXX").
bool leftover_temporary(const std::string& file) {
  auto at = file.rfind(".tmp.");
  return file.size() > 1 && file[0] == '.' && at != std::string::npos && at > 0
         && file.size() - at == 11;
}

/// What the start finds in the artifacts directory.
struct survey {
  std::map<std::string, struct stat> artifacts;      ///< valid names of regular files
  std::map<std::string, std::string> old_meta;       ///< artifact -> its .meta-*.json
};

/// Reads the artifacts directory: artifacts and old-layout metadata; removes
/// the temporary files of interrupted writes of earlier versions; leaves
/// everything else alone (never served), with a warning.
survey survey_directory(const std::string& dir) {
  survey out;
  DIR* d = ::opendir(dir.c_str());
  if (!d)
    return out;
  while (auto* e = ::readdir(d)) {
    std::string file = e->d_name;
    if (file == "." || file == ".." || file == own_dir)
      continue;
    auto path = dir + "/" + file;
    struct stat sb {};
    bool regular = ::lstat(path.c_str(), &sb) == 0 && S_ISREG(sb.st_mode);
    if (regular && valid_artifact_name(file)) {
      out.artifacts.emplace(file, sb);
    } else if (auto of = old_meta_of(file); regular && !of.empty()) {
      out.old_meta.emplace(of, file);
    } else if (regular && leftover_temporary(file)) {
      if (::unlink(path.c_str()) == 0)
        CF_INFO("artifact-store", "removed ", path, ", left by an interrupted write");
    } else {
      CF_WARN("artifact-store", "ignored ", path, ": ",
              regular ? std::string("not an artifact name (") + model::artifact_name_rule + ")"
                      : std::string("not a regular file"));
    }
  }
  ::closedir(d);
  return out;
}

/// Empties .store/ of temporary files (interrupted writes) and of metadata
/// whose artifact is gone.
void tidy_own_directory(const artifact_store_state& st) {
  DIR* d = ::opendir(st.own_path().c_str());
  if (!d)
    return;
  std::vector<std::string> stale;
  while (auto* e = ::readdir(d)) {
    std::string file = e->d_name;
    if (file == "." || file == "..")
      continue;
    auto json = old_meta_suffix.size();
    bool temporary = file[0] == '.';
    bool orphan = !temporary && file.size() > json
                  && st.index.count(file.substr(0, file.size() - json)) == 0;
    if (temporary || orphan)
      stale.push_back(file);
  }
  ::closedir(d);
  for (auto& file : stale)
    ::unlink((st.own_path() + "/" + file).c_str());
}

}  // namespace

/// Reads the directory: every artifact with its metadata (recomputed when
/// the metadata is missing or does not match the file's size), the old
/// layout's metadata moved into .store/.
void scan(self_ptr self) {
  auto& st = self->state;
  if (::mkdir(st.own_path().c_str(), 0755) != 0 && errno != EEXIST)
    CF_ERROR("artifact-store", "cannot create ", st.own_path(), ": ", std::strerror(errno));
  auto found = survey_directory(st.cfg.directory);
  for (auto& [name, sb] : found.artifacts) {
    artifact_info a;
    a.name = name;
    std::string err;
    auto old = found.old_meta.find(name);
    if (old != found.old_meta.end()) {
      // An upload could have written this file: only its time is taken, and
      // only when it agrees with the content.
      auto old_path = st.cfg.directory + "/" + old->second;
      artifact_info said;
      if (!measure(st.artifact_path(name), a))
        continue;
      bool agrees = model::decode_artifact_meta(read_file(old_path), said)
                    && said.sha256 == a.sha256 && said.size == a.size;
      a.uploaded_at = agrees ? said.uploaded_at : static_cast<model::millis>(sb.st_mtime) * 1000;
      if (!agrees)
        CF_WARN("artifact-store", old_path, " does not describe ", name,
                "'s content: its SHA-256 is computed anew");
      if (st.write(st.meta_path(name), model::encode_artifact_meta(a), err))
        ::unlink(old_path.c_str());
      else
        CF_ERROR("artifact-store", err);
      found.old_meta.erase(old);
    } else if (!model::decode_artifact_meta(read_file(st.meta_path(name)), a)
               || a.size != sb.st_size) {
      if (!measure(st.artifact_path(name), a))
        continue;
      a.uploaded_at = static_cast<model::millis>(sb.st_mtime) * 1000;
      if (!st.write(st.meta_path(name), model::encode_artifact_meta(a), err))
        CF_ERROR("artifact-store", err);
    }
    st.index[name] = a;
  }
  for (auto& [name, file] : found.old_meta)
    CF_WARN("artifact-store", "ignored ", st.cfg.directory, "/", file, ": there is no artifact ",
            name);
  tidy_own_directory(st);
}

/// Removes the metadata of `name` and makes that durable: replaced content is
/// never described by the metadata of the version before (a crash between
/// the two writes leaves none, and the start computes it).
bool forget_metadata(const artifact_store_state& st, const std::string& name,
                     std::string& error) {
  if (::unlink(st.meta_path(name).c_str()) != 0) {
    if (errno == ENOENT)
      return true;
    error = "cannot remove " + st.meta_path(name) + ": " + std::strerror(errno);
    return false;
  }
  int fd = ::open(st.own_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  return true;
}

}  // namespace coapfleet::server::artifacts_internal
