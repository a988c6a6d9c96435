// JSON of the worker agent's own resources.
#include "model/json.hpp"
#include "model/json_write.hpp"

namespace coapfleet::model {

using namespace json_write;

std::string encode_agent_system_info(const agent_system_info& s) {
  return write([&](writer& w) {
    w.StartObject();
    member(w, "node_id", s.node_id);
    member(w, "hostname", s.hostname);
    member(w, "os", s.os);
    member(w, "arch", s.arch);
    member(w, "kernel", s.kernel);
    member(w, "cpus", s.cpus);
    member(w, "memory_total_bytes", s.memory_total_bytes);
    member(w, "uptime_seconds", s.uptime_seconds);
    member(w, "agent_version", s.agent_version);
    member(w, "server", s.server);
    member(w, "registered", s.registered);
    string_or_null(w, "current_job", s.current_job);
    member(w, "queued_jobs", s.queued_jobs);
    w.EndObject();
  });
}

}  // namespace coapfleet::model
