#include "actors/server/artifact_store.hpp"

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <map>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.hpp"
#include "common/durable_file.hpp"
#include "common/log.hpp"
#include "common/sha256.hpp"
#include "model/json.hpp"

namespace coapfleet {

namespace server {

bool valid_artifact_name(const std::string& name) {
  if (name.empty() || name.size() > 128 || name == "." || name == "..")
    return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return false;
  return true;
}

namespace {

/// A read-only mapping of an artifact file.
class mapped_file : public shared_bytes {
public:
  static std::shared_ptr<const mapped_file> open(const std::string& path, std::string& error) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      error = std::strerror(errno);
      return nullptr;
    }
    struct stat st {};
    ::fstat(fd, &st);
    auto out = std::shared_ptr<mapped_file>(new mapped_file);
    out->size_ = static_cast<size_t>(st.st_size);
    if (out->size_ > 0) {
      void* p = ::mmap(nullptr, out->size_, PROT_READ, MAP_SHARED, fd, 0);
      if (p == MAP_FAILED) {
        error = std::strerror(errno);
        ::close(fd);
        return nullptr;
      }
      out->data_ = static_cast<const uint8_t*>(p);
    }
    ::close(fd);
    return out;
  }
  ~mapped_file() override {
    if (data_)
      ::munmap(const_cast<uint8_t*>(data_), size_);
  }
  const uint8_t* data() const override { return data_ ? data_ : &empty_; }
  size_t size() const override { return size_; }

private:
  mapped_file() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  static inline const uint8_t empty_ = 0;
};

/// Writes `data` to dir/name atomically and durably.
bool write_atomically(const std::string& dir, const std::string& name, std::string_view data,
                      std::string& error) {
  return common::write_file_atomically(dir + "/" + name, data, error);
}

std::string read_file(const std::string& path) {
  std::string out;
  common::read_file(path, out);
  return out;
}

std::string meta_name(const std::string& name) { return ".meta-" + name + ".json"; }

struct artifact_store_state {
  static inline const char* name = "artifact-store";
  artifact_store_config cfg;
  transport_actor transport;
  std::map<std::string, artifact_info> index;
  std::map<std::string, std::shared_ptr<const mapped_file>> mapped;  ///< serving cache
};

using self_ptr = artifact_store_actor::stateful_pointer<artifact_store_state>;

/// Reads the directory: every artifact with valid metadata (recomputed when
/// the metadata is missing or does not match the file's size).
void scan(self_ptr self) {
  auto& st = self->state;
  DIR* d = ::opendir(st.cfg.directory.c_str());
  if (!d)
    return;
  while (auto* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.empty() || name[0] == '.' || !valid_artifact_name(name))
      continue;
    auto path = st.cfg.directory + "/" + name;
    struct stat sb {};
    if (::stat(path.c_str(), &sb) != 0 || !S_ISREG(sb.st_mode))
      continue;
    artifact_info a;
    a.name = name;
    if (!model::decode_artifact_meta(read_file(st.cfg.directory + "/" + meta_name(name)), a)
        || a.size != sb.st_size) {
      std::string err;
      auto m = mapped_file::open(path, err);
      if (!m)
        continue;
      a.size = static_cast<int64_t>(m->size());
      a.sha256 = common::sha256_hex(std::string_view(reinterpret_cast<const char*>(m->data()), m->size()));
      a.uploaded_at = static_cast<model::millis>(sb.st_mtime) * 1000;
      write_atomically(st.cfg.directory, meta_name(name), model::encode_artifact_meta(a), err);
    }
    st.index[name] = a;
  }
  ::closedir(d);
}

/// Hands the transport an artifact's contents (mapped from its file) to
/// serve; without them (unreadable), GET /artifacts/<name> answers 4.04.
void publish(self_ptr self, const artifact_info& a) {
  auto& st = self->state;
  std::string err;
  auto m = mapped_file::open(st.cfg.directory + "/" + a.name, err);
  if (!m) {
    CF_ERROR("artifact-store", "cannot map ", a.name, ": ", err);
    return;
  }
  st.mapped[a.name] = m;
  self->send(st.transport, atom::artifact::value, artifact_blob{a, m});
}

caf::error not_found(const std::string& name) {
  return make_api_error(api_errc::not_found, "artifact not found", "artifact", "name", name);
}

}  // namespace

artifact_store_actor spawn_artifact_store(caf::actor_system& sys, artifact_store_config cfg,
                                          transport_actor transport) {
  auto fn = [](self_ptr self, artifact_store_config cfg,
               transport_actor transport) -> artifact_store_actor::behavior_type {
    auto& st = self->state;
    st.cfg = std::move(cfg);
    st.transport = std::move(transport);
    if (::mkdir(st.cfg.directory.c_str(), 0755) != 0 && errno != EEXIST)
      CF_ERROR("artifact-store", "cannot create ", st.cfg.directory, ": ", std::strerror(errno));
    scan(self);
    for (auto& kv : st.index)
      publish(self, kv.second);
    CF_INFO("artifact-store", st.index.size(), " artifacts in ", st.cfg.directory);
    return {
      [self](atom::upload, artifact_upload& up) -> caf::result<artifact_info> {
        auto& st = self->state;
        if (!valid_artifact_name(up.name))
          return make_api_error(api_errc::bad_request,
                                "artifact name must be 1..128 characters of A-Z a-z 0-9 . _ -",
                                "name");
        artifact_info a;
        a.name = up.name;
        a.size = static_cast<int64_t>(up.body.size());
        a.sha256 = common::sha256_hex(up.body);
        a.uploaded_at = now_millis();
        // Jobs not yet finished verify every block against the version they
        // pinned: other content now would fail each of their nodes.
        std::string blocking;
        for (auto& pin : up.pins)
          if (pin.sha256 != a.sha256)
            blocking += (blocking.empty() ? "" : ",") + pin.job_id;
        if (!blocking.empty()) {
          CF_INFO("artifact-store", "refused to replace ", a.name, ": named by unfinished job(s) ",
                  blocking);
          return make_api_error(api_errc::conflict,
                                "artifact " + a.name + " is named by unfinished job(s) with "
                                "another version; replace it once they have finished, or "
                                "cancel or delete them",
                                "name", "jobs", blocking);
        }
        std::string err;
        if (!write_atomically(st.cfg.directory, up.name, up.body, err)
            || !write_atomically(st.cfg.directory, meta_name(up.name), model::encode_artifact_meta(a), err)) {
          CF_ERROR("artifact-store", err);
          return make_api_error(api_errc::internal, "cannot store artifact: " + err);
        }
        st.index[a.name] = a;
        CF_INFO("artifact-store", "stored ", a.name, " size=", a.size, " sha256=", a.sha256);
        publish(self, a);
        self->send(st.transport, atom::changed::value, resource{resource_kind::artifacts, {}},
                   urgency::control);
        return a;
      },
      [self](atom::get, const std::string& name) -> caf::result<artifact_blob> {
        auto& st = self->state;
        auto i = st.index.find(name);
        if (i == st.index.end())
          return not_found(name);
        auto& m = st.mapped[name];
        if (!m) {
          std::string err;
          m = mapped_file::open(st.cfg.directory + "/" + name, err);
          if (!m) {
            st.mapped.erase(name);
            return make_api_error(api_errc::internal, "cannot read artifact: " + err);
          }
        }
        return artifact_blob{i->second, m};
      },
      [self](atom::info, const std::string& name) -> caf::result<artifact_info> {
        auto i = self->state.index.find(name);
        if (i == self->state.index.end())
          return not_found(name);
        return i->second;
      },
      [self](atom::list) -> std::vector<artifact_info> {
        std::vector<artifact_info> out;
        for (auto& kv : self->state.index)
          out.push_back(kv.second);
        return out;
      },
    };
  };
  if (cfg.detached)
    return sys.spawn<caf::detached>(fn, std::move(cfg), std::move(transport));
  return sys.spawn(fn, std::move(cfg), std::move(transport));
}

}  // namespace server
}  // namespace coapfleet
