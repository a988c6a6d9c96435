#include "actors/agent/journal.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "model/json.hpp"

namespace coapfleet::agent {

bool job_journal::knows(const std::string& job_id) const {
  for (auto& j : jobs)
    if (j.note.job_id == job_id)
      return true;
  return std::find(done.begin(), done.end(), job_id) != done.end();
}

void job_journal::finish_front() {
  if (jobs.empty())
    return;
  done.push_back(jobs.front().note.job_id);
  jobs.pop_front();
  while (done.size() > done_capacity)
    done.pop_front();
}

bool read_whole_file(const std::string& path, std::string& out) {
  out.clear();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0)
    out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return n == 0;
}

bool write_file_atomically(const std::string& path, const std::string& content,
                           std::string& error) {
  auto tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = "cannot create " + tmp + ": " + std::strerror(errno);
    return false;
  }
  const char* p = content.data();
  size_t left = content.size();
  bool ok = true;
  while (left > 0) {
    auto w = ::write(fd, p, left);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      ok = false;
      break;
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  if (ok && ::rename(tmp.c_str(), path.c_str()) != 0)
    ok = false;
  if (!ok) {
    error = "cannot write " + path + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  auto slash = path.rfind('/');
  auto dir = slash == std::string::npos ? std::string(".") : path.substr(0, slash);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return true;
}

namespace {

const char* phase_name(job_phase p) {
  switch (p) {
    case job_phase::queued: return "queued";
    case job_phase::downloading: return "downloading";
    case job_phase::installing: return "installing";
  }
  return "queued";
}

job_phase phase_of(const std::string& s) {
  if (s == "downloading")
    return job_phase::downloading;
  if (s == "installing")
    return job_phase::installing;
  return job_phase::queued;
}

std::string to_text(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace

job_journal load_journal(const std::string& path, std::string& error) {
  job_journal j;
  std::string text;
  if (!read_whole_file(path, text))
    return j;
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    error = path + " is damaged; starting with an empty journal";
    return j;
  }
  if (doc.HasMember("jobs") && doc["jobs"].IsArray())
    for (auto& item : doc["jobs"].GetArray()) {
      if (!item.IsObject() || !item.HasMember("note") || !item.HasMember("phase")
          || !item["phase"].IsString())
        continue;
      auto note = model::decode_update_notification(to_text(item["note"]));
      if (!note.ok()) {
        error = path + ": dropped a job: " + note.err.error;
        continue;
      }
      j.jobs.push_back({std::move(note.value), phase_of(item["phase"].GetString())});
    }
  if (doc.HasMember("done") && doc["done"].IsArray())
    for (auto& id : doc["done"].GetArray())
      if (id.IsString())
        j.done.emplace_back(id.GetString(), id.GetStringLength());
  return j;
}

bool save_journal(const std::string& path, const job_journal& j, std::string& error) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("jobs");
  w.StartArray();
  for (auto& job : j.jobs) {
    w.StartObject();
    w.Key("phase");
    w.String(phase_name(job.phase));
    w.Key("note");
    auto note = model::encode_update_notification(job.note);
    w.RawValue(note.data(), note.size(), rapidjson::kObjectType);
    w.EndObject();
  }
  w.EndArray();
  w.Key("done");
  w.StartArray();
  for (auto& id : j.done)
    w.String(id.data(), static_cast<rapidjson::SizeType>(id.size()));
  w.EndArray();
  w.EndObject();
  return write_file_atomically(path, std::string(buf.GetString(), buf.GetSize()), error);
}

std::deque<model::update_report> load_outbox(const std::string& path, std::string& error) {
  std::deque<model::update_report> out;
  std::string text;
  if (!read_whole_file(path, text))
    return out;
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsArray()) {
    error = path + " is damaged; starting with an empty outbox";
    return out;
  }
  for (auto& item : doc.GetArray()) {
    auto r = model::decode_updates_request(to_text(item));
    if (r.ok() && r.value.action == model::updates_action::report)
      out.push_back(std::move(r.value.report));
  }
  return out;
}

bool save_outbox(const std::string& path, const std::deque<model::update_report>& outbox,
                 std::string& error) {
  std::string text = "[";
  for (size_t i = 0; i < outbox.size(); ++i) {
    if (i > 0)
      text += ',';
    text += model::encode_update_report(outbox[i]);
  }
  text += ']';
  return write_file_atomically(path, text, error);
}

}  // namespace coapfleet::agent
