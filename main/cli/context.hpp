// What every `coapfleet` command shares: the global options, the exit codes,
// the connection to the server, and calls that turn CoAP answers into exit
// codes and messages on standard error.
#pragma once

#include "model/json_value.hpp"
#include "transport/blocking_client.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace coapfleet::cli {

/// The process's exit codes (also in every --help footer).
enum exit_code : int {
  exit_ok = 0,          ///< success
  exit_job_failed = 1,  ///< a watched job ended failed / partially_failed / cancelled
  exit_usage = 2,       ///< bad arguments or options
  exit_coap_error = 3,  ///< the server answered 4.xx / 5.xx
  exit_no_answer = 4,   ///< no answer within --timeout (or unreachable)
};

/// The footer of every --help page.
extern const char* const exit_code_help;

struct global_options {
  std::string server;     ///< coap://HOST:PORT or coaps://HOST:PORT
  std::string identity;   ///< for coaps://: the operator's (or reader's) identity
  std::string key_file;   ///< for coaps://: the file holding its key (mode 600)
  /// For coaps:// with X.509 instead: certificate, private key (mode 600), the
  /// CA the server's certificate must chain to, and the name it must carry.
  std::string cert_file, cert_key_file, ca_file, server_name;
  bool json = false;      ///< print the server's JSON instead of tables
  double timeout = 10.0;  ///< seconds to wait for one answer
  /// update watch / run: how long a server that stopped answering (a
  /// restart) is waited for before the watch gives up.
  double wait_server = 120.0;
};

/// A parsed JSON answer, or the exit code of what went wrong (already
/// reported on standard error).
struct json_answer {
  int exit = exit_ok;
  client::response raw;
  model::json_document doc;  ///< parsed by call(), not by call_raw()
  bool ok() const { return exit == exit_ok; }
  /// The answer's JSON object (absent unless call() succeeded).
  model::json_value json() const { return doc.root(); }
};

class context {
public:
  global_options options;
  /// The command chosen on the command line; runs after parsing.
  std::function<int()> action;

  /// The client (created on first use from the options). Null after a usage
  /// error in --server, which it reports.
  client::blocking_client* client();

  /// A request whose 2.xx answer must be JSON. CoAP errors and silence are
  /// reported on standard error and come back as their exit code.
  json_answer call(client::method m, const std::string& path, const std::string& query = "",
                   const std::string& body = "");

  /// The same, for any answer body (text, link-format).
  json_answer call_raw(client::method m, const std::string& path,
                       const std::string& query = "", const std::string& body = "");

  /// Reports an error answer (code, the JSON "error" text) on standard error.
  int report_error(const client::response& r) const;
  /// Reports a missing answer on standard error.
  int report_no_answer(const std::string& failure) const;

private:
  std::unique_ptr<client::blocking_client> client_;
};

/// Prints `text` followed by a newline on standard output (the --json path:
/// the server's JSON exactly as it came).
void print_raw(const std::string& text);

/// "Not Found" for 4.04 and so on; "" for unknown codes.
std::string code_name(uint8_t code);

}  // namespace coapfleet::cli
