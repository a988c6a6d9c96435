#include "actors/server/gateway.hpp"

#include <cstdio>
#include <fstream>
#include <unistd.h>

#include "common/clock.hpp"
#include "common/log.hpp"

namespace coapfleet::server {

namespace {

struct gateway_state {
  static inline const char* name = "gateway";
  gateway_config cfg;
  gateway_peers peers;
  // CPU usage of the server process between two GET /health.
  double last_cpu_seconds = 0;
  model::millis last_cpu_at = 0;
};

using self_ptr = gateway_actor::stateful_pointer<gateway_state>;

void answer(self_ptr self, uint64_t id, coap_reply r) {
  self->send(self->state.peers.transport, atom::reply::value, id, std::move(r));
}

/// Resident memory and CPU share of this process, from /proc/self.
model::server_stats process_stats(gateway_state& st) {
  model::server_stats out;
  long pages_total = 0, pages_rss = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages_total, &pages_rss) == 2)
      out.rss_bytes = static_cast<uint64_t>(pages_rss) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    std::fclose(f);
  }
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (std::getline(stat, line)) {
    auto close = line.rfind(')');
    if (close != std::string::npos) {
      // Fields after the command name: state is field 3, utime 14, stime 15.
      unsigned long utime = 0, stime = 0;
      const char* p = line.c_str() + close + 2;
      int field = 3;
      while (*p && field < 14) {
        if (*p == ' ')
          ++field;
        ++p;
      }
      if (std::sscanf(p, "%lu %lu", &utime, &stime) == 2) {
        double secs = static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
        auto now = now_millis();
        if (st.last_cpu_at > 0 && now > st.last_cpu_at)
          out.cpu_percent = 100.0 * (secs - st.last_cpu_seconds) / ((now - st.last_cpu_at) / 1000.0);
        st.last_cpu_seconds = secs;
        st.last_cpu_at = now;
      }
    }
  }
  return out;
}

/// The representation of an observable path, from the actor that owns it.
void render(self_ptr self, uint64_t id, const std::string& path) {
  auto timeout = self->state.cfg.request_timeout;
  auto& peers = self->state.peers;
  auto fail = [self, id](caf::error& err) { answer(self, id, error_reply(err)); };
  if (path == "health") {
    self->request(peers.registry, timeout, atom::health::value)
      .then(
        [self, id](model::fleet_health& h) {
          h.server = process_stats(self->state);
          h.server.uptime_seconds = (now_millis() - self->state.cfg.started_at) / 1000.0;
          self->request(self->state.peers.persistence, std::chrono::seconds(5), atom::ping::value)
            .then(
              [self, id, h](bool ok) mutable {
                h.server.database = ok ? "connected" : "disconnected";
                answer(self, id, json_reply(205, model::encode_fleet_health(h)));
              },
              [self, id, h](caf::error&) mutable {
                h.server.database = "disconnected";
                answer(self, id, json_reply(205, model::encode_fleet_health(h)));
              });
        },
        fail);
  } else if (path == "nodes") {
    self->request(peers.registry, timeout, atom::list::value, node_filter{})
      .then([self, id](std::vector<model::node_record>& nodes) {
              answer(self, id, json_reply(205, model::encode_nodes(nodes)));
            },
            fail);
  } else if (path == "updates") {
    self->request(peers.jobs, timeout, atom::list::value)
      .then([self, id](std::vector<model::job_record>& jobs) {
              answer(self, id, json_reply(205, model::encode_jobs(jobs)));
            },
            fail);
  } else if (path.rfind("updates/", 0) == 0 && path.size() > 15
             && path.compare(path.size() - 7, 7, "/status") == 0) {
    auto job = path.substr(8, path.size() - 15);
    self->request(peers.jobs, timeout, atom::status::value, job)
      .then([self, id](model::job_record& j) {
              answer(self, id, json_reply(205, model::encode_job_status(j)));
            },
            fail);
  } else if (path.rfind("nodes/", 0) == 0 && path.size() > 13
             && path.compare(path.size() - 7, 7, "/health") == 0) {
    node_filter f;
    f.node_id = path.substr(6, path.size() - 13);
    self->request(peers.registry, timeout, atom::list::value, f)
      .then(
        [self, id, node = f.node_id](std::vector<model::node_record>& nodes) {
          if (nodes.empty())
            return answer(self, id,
                          json_reply(404, model::encode_error("node not registered",
                                                              {{"node_id", node}})));
          answer(self, id, json_reply(205, model::encode_node_health(nodes.front())));
        },
        fail);
  } else {
    answer(self, id, json_reply(404, model::encode_error("no such resource", {{"path", path}})));
  }
}

}  // namespace

gateway_actor spawn_gateway(caf::actor_system& sys, gateway_config cfg, gateway_peers peers) {
  auto fn = [](self_ptr self, gateway_config cfg,
               gateway_peers peers) -> gateway_actor::behavior_type {
    self->state.cfg = cfg;
    self->state.peers = std::move(peers);
    auto timeout = cfg.request_timeout;
    auto fail = [self](uint64_t id) {
      return [self, id](caf::error& err) {
        if (err.category() != api_category)
          CF_WARN("gateway", "request ", id, " failed: ", caf::to_string(err));
        answer(self, id, error_reply(err));
      };
    };
    return {
      [=](atom::enroll, uint64_t id, model::node_registration& reg, peer& from) {
        self->request(self->state.peers.registry, timeout, atom::enroll::value, std::move(reg),
                      std::move(from))
          .then(
            [=](registered& r) {
              answer(self, id,
                     json_reply(201, model::encode_message("Node registered successfully",
                                                         {{"node_id", r.node_id}})));
            },
            fail(id));
      },
      [=](atom::list, uint64_t id, node_filter& filter) {
        self->request(self->state.peers.registry, timeout, atom::list::value, std::move(filter))
          .then(
            [=](std::vector<model::node_record>& nodes) {
              answer(self, id, json_reply(205, model::encode_nodes(nodes)));
            },
            fail(id));
      },
      [=](atom::create, uint64_t id, model::job_spec& spec, peer& from) {
        self->request(self->state.peers.jobs, timeout, atom::create::value, std::move(spec),
                      std::move(from))
          .then(
            [=](model::job_record& j) {
              answer(self, id, json_reply(201, model::encode_job_created(j)));
            },
            fail(id));
      },
      [=](atom::install, uint64_t id, std::string& job_id, peer& from) {
        self->request(self->state.peers.jobs, timeout, atom::install::value, std::move(job_id),
                      std::move(from))
          .then(
            [=](model::job_record& j) {
              answer(self, id, json_reply(204, model::encode_job_triggered(j)));
            },
            fail(id));
      },
      [=](atom::status, uint64_t id, std::string& job_id) {
        render(self, id, "updates/" + job_id + "/status");  // the same representation
      },
      [=](atom::report, uint64_t id, model::update_report& r, peer& from) {
        self->request(self->state.peers.jobs, timeout, atom::report::value, std::move(r),
                      std::move(from))
          .then(
            [=](bool) {
              answer(self, id, json_reply(204, model::encode_message("Report accepted")));
            },
            fail(id));
      },
      [=](atom::cancel, uint64_t id, std::string& job_id, peer& from) {
        self->request(self->state.peers.jobs, timeout, atom::cancel::value, std::move(job_id),
                      std::move(from))
          .then(
            [=](model::job_record& j) {
              // Small on purpose: a separate response must fit one datagram.
              answer(self, id, json_reply(204, model::encode_message(
                                                 "Update job " + j.job_id + " cancelled",
                                                 {{"job_id", j.job_id},
                                                  {"status", model::to_string(j.status)}})));
            },
            fail(id));
      },
      [=](atom::remove, uint64_t id, std::string& job_id, peer& from) {
        self->request(self->state.peers.jobs, timeout, atom::remove::value, job_id,
                      std::move(from))
          .then(
            [=](bool) {
              answer(self, id, json_reply(202, model::encode_message("Update job " + job_id
                                                                       + " deleted",
                                                                     {{"job_id", job_id}})));
            },
            fail(id));
      },
      [=](atom::observe, uint64_t id, std::string& path) { render(self, id, path); },
      [=](atom::info, uint64_t id) {
        self->request(self->state.peers.system, timeout, atom::info::value)
          .then(
            [=](model::system_info& s) {
              answer(self, id, json_reply(205, model::encode_system_info(s)));
            },
            fail(id));
      },
      [=](atom::upload, uint64_t id, artifact_upload& up, peer& from) {
        auto name = up.name;
        auto size = up.body.size();
        auto body = std::make_shared<artifact_upload>(std::move(up));
        // The unfinished jobs naming it travel with the upload: the store,
        // which computes the new SHA-256, refuses other content for them.
        self->request(self->state.peers.jobs, timeout, atom::uses::value, name)
          .then(
            [=](std::vector<model::job_record>& jobs) {
              for (auto& j : jobs)
                body->pins.push_back({j.job_id, j.spec.artifact_sha256});
              self->request(self->state.peers.artifacts, timeout, atom::upload::value,
                            std::move(*body))
                .then(
                  [=](artifact_info& a) {
                    CF_INFO("gateway", "artifact ", a.name, " (", size, " bytes) uploaded by ",
                            from.address);
                    answer(self, id, json_reply(204, model::encode_artifact(a)));
                  },
                  fail(id));
            },
            fail(id));
      },
      [=](atom::artifact, uint64_t id, std::string& name) {
        self->request(self->state.peers.artifacts, timeout, atom::get::value, std::move(name))
          .then(
            [=](artifact_blob& b) {
              coap_reply r;
              r.code = 205;
              r.content_format = 42;  // application/octet-stream
              r.etag = b.info.etag();
              r.shared_body = b.bytes;
              answer(self, id, std::move(r));
            },
            fail(id));
      },
      [=](atom::list, uint64_t id, atom::artifact) {
        self->request(self->state.peers.artifacts, timeout, atom::list::value)
          .then(
            [=](std::vector<artifact_info>& all) {
              answer(self, id, json_reply(205, model::encode_artifacts(all)));
            },
            fail(id));
      },
      [=](atom::action, uint64_t id, uint8_t action, peer& from) {
        auto a = static_cast<model::system_action>(action);
        if (a == model::system_action::status) {
          self->request(self->state.peers.system, timeout, atom::status::value)
            .then(
              [=](model::system_status& s) {
                answer(self, id, json_reply(205, model::encode_system_status(s)));
              },
              fail(id));
          return;
        }
        self->request(self->state.peers.system, timeout, atom::action::value, action,
                      std::move(from))
          .then(
            [=](bool) {
              auto r = json_reply(204, model::encode_message(
                                         a == model::system_action::restart
                                           ? "Server restart initiated"
                                           : "Server shutdown initiated",
                                         {{"action", model::to_string(a)}}));
              r.after = a == model::system_action::restart ? 2 : 1;
              answer(self, id, std::move(r));
            },
            fail(id));
      },
    };
  };
  return sys.spawn(fn, cfg, std::move(peers));
}

}  // namespace coapfleet::server
