// The installer's artifact download: block by block (Block2, 1024 bytes) into
// downloads/<job>.part, resuming after the last complete block on disk,
// retrying unanswered blocks with backoff, every block checked against the
// version (ETag) the job names.
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actors/agent/installer_state.hpp"
#include "common/log.hpp"

namespace coapfleet::agent::installer_detail {

void request_block(self_ptr self) {
  auto& st = self->state;
  auto& note = current(self);
  client_request req;
  req.method = request_method::get;
  req.host = st.servers.host();
  req.port = st.servers.port();
  st.dl.asked = st.servers.current();
  req.path = "artifacts/" + note.spec.artifact;
  req.block2_num = static_cast<int32_t>(st.dl.next_block);
  req.block2_szx = block_szx;
  st.dl.request_id = st.next_id++;
  self->send(st.transport, atom::request::value, st.dl.request_id, std::move(req));
}

/// Downloads the artifact block by block into downloads/<job>.part, resuming
/// after the last complete block already on disk.
void begin_download(self_ptr self) {
  auto& st = self->state;
  auto& front = st.journal.jobs.front();
  if (front.phase != job_phase::downloading) {
    front.phase = job_phase::downloading;
    save(self);
  }
  ::mkdir((st.cfg.state_dir + "/downloads").c_str(), 0755);
  st.dl = download_state{};
  st.dl.path = st.cfg.state_dir + "/downloads/" + front.note.job_id + ".part";
  st.dl.fd = ::open(st.dl.path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (st.dl.fd < 0)
    return finish(self, false, static_cast<int32_t>(model::update_result::not_enough_storage),
                  "cannot open " + st.dl.path + ": " + std::strerror(errno));
  struct stat sb {};
  ::fstat(st.dl.fd, &sb);
  st.dl.next_block = sb.st_size / block_size;
  if (::ftruncate(st.dl.fd, st.dl.next_block * block_size) != 0)
    CF_WARN("installer", "cannot truncate ", st.dl.path);
  if (st.dl.next_block > 0)
    CF_INFO("installer", "job ", front.note.job_id, ": resuming download of ",
            front.note.spec.artifact, " at block ", st.dl.next_block);
  else
    CF_INFO("installer", "job ", front.note.job_id, ": downloading ", front.note.spec.artifact,
            " (", front.note.spec.artifact_size, " bytes)");
  report(self, model::node_update_state::downloading, 0);
  request_block(self);
}

void on_block(self_ptr self, client_response& r) {
  auto& st = self->state;
  auto& note = current(self);
  if (r.code == 0 || r.code == 503) {
    if (r.code == 0)
      fail_over(self, st.dl.asked);
    if (++st.dl.retries > st.cfg.download_retries)
      return finish(self, false, static_cast<int32_t>(model::update_result::connection_lost),
                    "download of " + note.spec.artifact + " stopped at block "
                      + std::to_string(st.dl.next_block) + ": "
                      + (r.error.empty() ? "server busy" : r.error));
    auto delay = std::chrono::seconds(1 << std::min(st.dl.retries - 1, 4));
    self->delayed_send(self, delay, atom::tick::value);
    return;
  }
  if (r.code == 404)
    return finish(self, false, static_cast<int32_t>(model::update_result::invalid_uri),
                  "artifact " + note.spec.artifact + " not found on the server");
  if (r.code != 205)
    return finish(self, false, static_cast<int32_t>(model::update_result::update_failed),
                  "download of " + note.spec.artifact + " answered " + std::to_string(r.code / 100)
                    + "." + std::to_string(r.code % 100));
  // Every block must come from the version the job names.
  uint64_t etag = 0;
  for (unsigned char c : r.etag)
    etag = (etag << 8) | c;
  // (A block without an ETag is taken: the whole file's SHA-256 is checked
  // before anything is installed.)
  if (!note.spec.artifact_sha256.empty() && !r.etag.empty()
      && etag != model::etag_of_sha256(note.spec.artifact_sha256))
    return finish(self, false, static_cast<int32_t>(model::update_result::integrity_check_failed),
                  "artifact " + note.spec.artifact
                    + " changed on the server during the download (ETag mismatch)");
  if (r.block2_num >= 0 && r.block2_num != st.dl.next_block) {
    request_block(self);  // an answer to an older request: ask again
    return;
  }
  st.dl.retries = 0;
  auto offset = st.dl.next_block * block_size;
  if (::pwrite(st.dl.fd, r.payload.data(), r.payload.size(), offset)
      != static_cast<ssize_t>(r.payload.size()))
    return finish(self, false, static_cast<int32_t>(model::update_result::not_enough_storage),
                  "cannot write " + st.dl.path + ": " + std::strerror(errno));
  bool more = r.block2_num >= 0 && r.block2_more;
  auto total = note.spec.artifact_size > 0 ? note.spec.artifact_size : r.size2;
  if (more) {
    ++st.dl.next_block;
    if (total > 0) {
      int decile = static_cast<int>(10 * (offset + static_cast<int64_t>(r.payload.size())) / total);
      if (decile > st.dl.last_reported_decile && decile < 10) {
        st.dl.last_reported_decile = decile;
        report(self, model::node_update_state::downloading, decile * 10);
      }
    }
    request_block(self);
    return;
  }
  ::fsync(st.dl.fd);
  ::close(st.dl.fd);
  st.dl.fd = -1;
  CF_INFO("installer", "job ", note.job_id, ": downloaded ", offset + r.payload.size(), " bytes");
  report(self, model::node_update_state::downloaded, 100);
  run_install(self);
}

}  // namespace coapfleet::agent::installer_detail
