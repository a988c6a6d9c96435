#include "model/job_signature.hpp"

namespace coapfleet::model {

namespace {

void value(std::string& out, const std::string& v) {
  out += std::to_string(v.size());
  out += ':';
  out += v;
}

void field(std::string& out, const char* name, const std::string& v) {
  out += name;
  out += '=';
  value(out, v);
  out += '\n';
}

}  // namespace

std::string signed_job_text(const job_spec& s) {
  std::string out = signed_job_header;
  out += '\n';
  field(out, "name", s.name);
  field(out, "version", s.version);
  field(out, "package_type", s.package_type);
  out += "packages=";
  out += std::to_string(s.packages.size());
  out += ':';
  for (auto& p : s.packages)
    value(out, p);
  out += '\n';
  field(out, "artifact", s.artifact);
  field(out, "artifact_sha256", s.artifact_sha256);
  field(out, "target_path", s.target_path);
  field(out, "mode", s.mode);
  field(out, "script", s.script);
  field(out, "timeout_seconds", std::to_string(s.timeout_seconds));
  // Only when there is one: the text of a job without it (and its
  // signature) is what it always was.
  if (!s.health_check.empty())
    field(out, "health_check", s.health_check);
  return out;
}

}  // namespace coapfleet::model
