// A small synchronous CoAP client (libcoap 4.3.1, no CAF) for the operator
// CLI: one request at a time, each call returns when the answer is complete
// or its timeout has passed. The only CLI code that calls coap_*.
//
// Normal requests run on a context with libcoap's block mode
// (COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY), so a large GET /nodes
// arrives whole; uploads run a manual Block1 loop on a second context
// without block mode, so the caller sees every block (progress bars).
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/certificate_files.hpp"
#include "common/key_file.hpp"

namespace coapfleet::client {

/// coap://HOST[:PORT] or coaps://HOST[:PORT] (DTLS, default port 5684) with
/// HOST an IPv4/IPv6 literal ([::1]) or localhost.
struct server_uri {
  std::string host;    ///< the address literal (localhost becomes 127.0.0.1)
  uint16_t port = 5683;
  std::string text;    ///< as the user wrote it, without a trailing '/'
  bool secure = false; ///< coaps://
  /// For coaps://: the identity and pre-shared key the client speaks with.
  common::psk_credentials credentials;
  /// Or a certificate: the client shows certificate.cert, and the server's
  /// certificate must chain to certificate.ca and name `server_name` (see
  /// common::certificate_has_name; default: the host as written).
  common::certificate_files certificate;
  std::string server_name;
  std::string written_host;  ///< the host as the user wrote it ("localhost")
};

/// Parses `text`; on failure returns nothing and says why in `error`.
std::optional<server_uri> parse_server_uri(const std::string& text, std::string& error);

enum class method { get, post, put, del };

/// One complete answer of the server.
struct response {
  uint8_t code = 0;             ///< class << 5 | detail, e.g. 0x45 for 2.05
  int content_format = -1;      ///< -1 when absent
  uint32_t max_age = 60;        ///< the Max-Age option (default 60 s)
  bool observing = false;       ///< carried an Observe option
  std::optional<uint32_t> block1;  ///< its Block1 option (uploads: 2.31 Continue)
  std::string body;

  std::string code_text() const;  ///< "2.05"
  bool success() const { return (code >> 5) == 2; }
};

/// What a request came to: the server's answer (any code), or why there is
/// none (timeout, unreachable, a local error).
struct outcome {
  std::optional<response> answer;
  std::string failure;  ///< set when there is no answer
  bool answered() const { return answer.has_value(); }
};

/// How an observation ended.
struct observe_outcome {
  enum how_t {
    stopped,     ///< the callback returned false; the observation was cancelled
    ended,       ///< the server answered an error (last holds it)
    no_answer,   ///< no (re-)registration answer within the timeout
    interrupted, ///< *interrupted became non-zero (a signal); cancelled as well
  } how = no_answer;
  std::optional<response> last;
  std::string failure;
};

/// Per uploaded block: bytes acknowledged so far and the total.
using upload_progress = std::function<void(size_t done, size_t total)>;
/// Per notification; returns whether to keep observing.
using notification_handler = std::function<bool(const response&)>;

class blocking_client {
public:
  /// `timeout`: the longest wait for one answer (every call).
  blocking_client(server_uri server, std::chrono::milliseconds timeout);
  ~blocking_client();
  blocking_client(const blocking_client&) = delete;
  blocking_client& operator=(const blocking_client&) = delete;

  const server_uri& server() const;
  std::chrono::milliseconds timeout() const;

  /// One request: `path` without the leading '/', `query` as "a=b&c=d".
  /// The body goes with `content_format` (-1: none) and, when large, Block1.
  outcome request(method m, const std::string& path, const std::string& query = "",
                  const std::string& body = "", int content_format = -1);

  /// GET `path` with Observe=0 and hands every 2.xx notification to
  /// `on_notification` until it returns false (then the observation is
  /// cancelled with a GET Observe=1) or the server ends it with an error. When
  /// no notification comes within Max-Age + 2 s (or the answer had no Observe
  /// option: the path is not observable, re-read every second) the client
  /// registers again; if that gets no answer within the timeout it gives up.
  /// A signal handler may set `*interrupted` to stop early. `max_silence`
  /// (when above zero) caps the wait for the next notification before the
  /// client registers again: a server restarted since it last spoke has
  /// forgotten the observation and would stay silent for all of Max-Age.
  observe_outcome observe(const std::string& path, const std::string& query,
                          const notification_handler& on_notification,
                          const volatile std::sig_atomic_t* interrupted = nullptr,
                          std::chrono::milliseconds max_silence = {});

  /// PUT `body` to `path` in Block1 blocks of `block_size` (16..1024; the
  /// server may ask for smaller ones), calling `progress` after each
  /// acknowledged block. The answer is the final one (2.01/2.04 or an error).
  outcome upload(const std::string& path, const std::string& body, size_t block_size,
                 const upload_progress& progress);

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

}  // namespace coapfleet::client
