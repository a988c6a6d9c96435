// The installer's state and the steps its files share (installer.cpp: jobs,
// journal and the supervised handler run; installer_download.cpp: the
// block-wise artifact download). Internal to the installer actor.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "actors/agent/installer.hpp"
#include "actors/agent/journal.hpp"
#include "actors/agent/server_list.hpp"

namespace coapfleet::agent::installer_detail {

constexpr uint8_t block_szx = 6;  // 1024-byte blocks
constexpr int64_t block_size = 1024;

struct download_state {
  std::string path;
  int fd = -1;
  int64_t next_block = 0;
  uint64_t request_id = 0;
  int retries = 0;
  int last_reported_decile = -1;
  std::string asked;  ///< HOST:PORT the last block request went to
};

/// The handler run in progress: its worker (monitored) and the process group
/// of the child it runs, if any.
struct handler_run_state {
  uint64_t id = 0;
  caf::actor worker;  ///< invalid: no run in progress
  int32_t pgid = 0;   ///< 0: no child process right now
  int32_t group = 0;  ///< the last child's process group (what may be left of it)
  bool cancelled = false;  ///< a forced cancel stops it: a failure is reported cancelled
};

/// A job's spec being fetched from the server for the notifications that
/// named it (answered once it is journaled, or with the reason it is not).
struct spec_fetch {
  std::string job_id;
  uint32_t attempt = 1;
  std::string server;  ///< the notification's hint, kept with the job
  std::vector<caf::typed_response_promise<atom::ok>> waiting;
  std::string body;    ///< the blocks so far (fetched one block at a time)
  int32_t next_block = 0;
  /// Servers failed over to for it (asked again at the next member while
  /// there is one it has not tried; none once its deadline passed).
  size_t failovers = 0;
  bool expired = false;
  std::string asked;  ///< HOST:PORT its last request went to
};

struct installer_state {
  static inline const char* name = "installer";
  installer_config cfg;
  server_list servers;  ///< cfg's servers, the one asked first
  reporter_actor reporter;
  agent_transport_actor transport;
  job_journal journal;        ///< as on disk: queued jobs, the current one first
  std::string journal_path;
  std::string group_path;     ///< the running handler's process group (handler_group.hpp)
  model::string_map inventory;  ///< what successful jobs installed (inventory.json)
  std::string inventory_path;
  bool stopping = false;      ///< the agent stops: nothing more starts or finishes
  bool busy = false;          ///< the front job is being downloaded or installed
  download_state dl;          ///< the current download, if any
  uint64_t next_id = 1;       ///< id of the next request to the transport
  handler_run_state run;      ///< the current handler run, if any
  uint64_t next_run = 1;      ///< id of the next handler run (its watchdog names it)
  std::map<uint64_t, spec_fetch> fetches;  ///< by request id
};

using self_ptr = installer_actor::stateful_pointer<installer_state>;

/// Writes the journal (errors are logged).
void save(self_ptr self);
/// The job at the front of the journal (the one being worked on).
const model::update_notification& current(self_ptr self);
/// Tells the reporter a step of the current job.
void report(self_ptr self, model::node_update_state s, int32_t progress = -1,
            int32_t result = -1, std::string error = {});
/// Ends the current job (reported), forgets its download, starts the next.
/// A failure with result 10 (cancelled) is reported as cancelled.
void finish(self_ptr self, bool ok, int32_t result, std::string error,
            bool rolled_back = false);
/// The server cancels run (job_id, attempt); see installer_actor.
std::string cancel_run(self_ptr self, const std::string& job_id, uint32_t attempt, bool force);
/// Closes the download file, if open, and forgets the download.
void close_download(self_ptr self);
/// Starts the job at the front of the journal, unless one is running.
void start_next(self_ptr self);
/// Installs the current job through its handler on a supervised worker.
void run_install(self_ptr self);

/// POST /updates/available (installer_fetch.cpp): a job this node knows is
/// answered at once; any other is fetched from the server (GET
/// /updates/<job>/spec?node_id=) and journaled before the answer.
caf::result<atom::ok> accept_notification(self_ptr self, model::update_notification& note);
/// Asks the server for the next block of spec fetch `id`.
void request_spec_block(self_ptr self, uint64_t id);
/// A call to `asked` (HOST:PORT) got no answer: the next of several
/// servers, unless another call moved on from it already.
void fail_over(self_ptr self, const std::string& asked);
/// The server's answer to spec fetch `id`; false when `id` is no fetch.
bool on_spec(self_ptr self, uint64_t id, client_response& r);
/// Fetch `id` got no answer in time.
void on_fetch_deadline(self_ptr self, uint64_t id);
/// With --verify-key: why `spec` must not run ("" when its signature verifies).
std::string signature_problem(self_ptr self, const model::job_spec& spec);

/// Downloads the current job's artifact into downloads/<job>.part.
void begin_download(self_ptr self);
/// Asks the server for the next block.
void request_block(self_ptr self);
/// A block answer of the transport.
void on_block(self_ptr self, client_response& r);

}  // namespace coapfleet::agent::installer_detail
