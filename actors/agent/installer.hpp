// The installer owns the agent's update jobs: for every notification it
// fetches the job's spec from its server (a notification names the job only)
// and journals it before the 2.04, runs one job at a time (download block by
// block with resume, verify, install through the package_type handler on a
// worker thread it supervises) and reports each step through the reporter.
// After a restart it finishes or fails the job it was running.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "actors/agent/handlers.hpp"
#include "actors/agent/install_worker.hpp"
#include <utility>
#include <vector>

#include "actors/interfaces.hpp"
#include "common/job_signing.hpp"

namespace coapfleet::agent {

struct installer_config {
  std::string node_id;
  std::string server_host = "127.0.0.1";
  uint16_t server_port = 5683;
  /// The other members of the server's cluster, in turn: a fetch or a
  /// download block that gets no answer goes to the next one after that.
  std::vector<std::pair<std::string, uint16_t>> other_servers;
  std::string state_dir = ".";  ///< journal.json and downloads/ live here
  handler_config handlers;
  int download_retries = 5;     ///< per block, after CoAP's own retransmissions
  /// Added to a handler's timeout before the watchdog abandons its run.
  std::chrono::seconds watchdog_grace{30};
  /// How long a notification waits for its job's spec from the server
  /// before it is answered 5.03 (below the gateway's 10 s).
  std::chrono::milliseconds fetch_timeout{std::chrono::seconds(8)};
  /// --verify-key: when set, only jobs whose signature verifies with it run;
  /// unsigned and badly signed ones fail (result 5) without running.
  std::shared_ptr<const common::ed25519_key> verify_key;
  /// Starts the worker of a handler run; empty: launch_detached_worker.
  /// (Tests put workers of their own here.)
  worker_launcher launch;
};

installer_actor spawn_installer(caf::actor_system& sys, installer_config cfg,
                                reporter_actor reporter, agent_transport_actor transport);

}  // namespace coapfleet::agent
