// JSON of the agent's journal and outbox files.
#include "model/journal.hpp"

#include <rapidjson/document.h>

#include "model/json.hpp"
#include "model/json_read.hpp"
#include "model/json_write.hpp"

namespace coapfleet::model {

using namespace json_write;

namespace {

const char* phase_name(job_phase p) {
  switch (p) {
    case job_phase::queued: return "queued";
    case job_phase::downloading: return "downloading";
    case job_phase::installing: return "installing";
  }
  return "queued";
}

job_phase phase_of(std::string_view s) {
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

std::string encode_journal(const job_journal& j) {
  return write([&](writer& w) {
    w.StartObject();
    key(w, "jobs");
    w.StartArray();
    for (auto& job : j.jobs) {
      w.StartObject();
      member(w, "phase", phase_name(job.phase));
      key(w, "note");
      auto note = encode_node_job(job.note);
      w.RawValue(note.data(), note.size(), rapidjson::kObjectType);
      w.EndObject();
    }
    w.EndArray();
    key(w, "done");
    w.StartArray();
    for (auto& id : j.done)
      put(w, id);
    w.EndArray();
    w.EndObject();
  });
}

bool decode_journal(std::string_view text, job_journal& out, std::string& warning) {
  out = job_journal{};
  rapidjson::Document doc;
  if (!json_read::refused_before_parsing(text).empty())
    return false;  // too deep for the reader, or cut short by a NUL byte
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject())
    return false;
  if (doc.HasMember("jobs") && doc["jobs"].IsArray())
    for (auto& item : doc["jobs"].GetArray()) {
      if (!item.IsObject() || !item.HasMember("note") || !item.HasMember("phase")
          || !item["phase"].IsString())
        continue;
      auto note = decode_node_job(to_text(item["note"]));
      if (!note.ok()) {
        warning += (warning.empty() ? "" : "; ") + std::string("dropped a job: ") + note.err.error;
        continue;
      }
      out.jobs.push_back({std::move(note.value),
                          phase_of({item["phase"].GetString(), item["phase"].GetStringLength()})});
    }
  if (doc.HasMember("done") && doc["done"].IsArray())
    for (auto& id : doc["done"].GetArray())
      if (id.IsString())
        out.done.emplace_back(id.GetString(), id.GetStringLength());
  return true;
}

std::string encode_outbox(const std::deque<update_report>& outbox) {
  std::string text = "[";
  for (size_t i = 0; i < outbox.size(); ++i) {
    if (i > 0)
      text += ',';
    text += encode_update_report(outbox[i]);
  }
  text += ']';
  return text;
}

bool decode_outbox(std::string_view text, std::deque<update_report>& out) {
  out.clear();
  rapidjson::Document doc;
  if (!json_read::refused_before_parsing(text).empty())
    return false;  // too deep for the reader, or cut short by a NUL byte
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsArray())
    return false;
  for (auto& item : doc.GetArray()) {
    auto r = decode_updates_request(to_text(item));
    if (r.ok() && r.value.action == updates_action::report)
      out.push_back(std::move(r.value.report));
  }
  return true;
}

}  // namespace coapfleet::model
