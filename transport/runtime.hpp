// The CoAP runtime shared by the server's and the agent's transports: one
// thread that owns libcoap (the only code calling coap_*), woken by libcoap's
// epoll fd, an eventfd for actor messages (an actor_companion bridges CAF to
// this loop) and a signalfd for SIGINT/SIGTERM. It also carries what every
// transport needs: deferred answers (async writes, bounded waits for reads),
// a cache of answers for retransmitted requests, outgoing client requests,
// and a graceful stop.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/actor_companion.hpp>
#include <caf/scoped_execution_unit.hpp>
#include <coap3/coap.h>

#include "actors/interfaces.hpp"
#include "common/certificate_files.hpp"
#include "common/key_file.hpp"
#include "transport/block1.hpp"
#include "transport/stop_reason.hpp"

namespace coapfleet::transport {

/// A string shared between threads without copying (a representation's body).
class shared_string : public shared_bytes {
public:
  explicit shared_string(std::string s) : s_(std::move(s)) {}
  const uint8_t* data() const override { return reinterpret_cast<const uint8_t*>(s_.data()); }
  size_t size() const override { return s_.size(); }
  const std::string& str() const { return s_; }

private:
  std::string s_;
};

/// A request waiting for an actor's answer.
struct pending_request {
  uint64_t id = 0;
  coap_async_t* async = nullptr;  ///< null: a read whose handler waits
  bool ready = false;
  /// A confirmable request whose empty ACK was held back: answered within
  /// `piggyback_window_ms` of `since`, the answer goes in the ACK itself.
  bool held_ack = false;
  int64_t since = 0;  ///< steady ms when it was deferred
  /// The request's message id (libcoap re-runs the handler with a copy
  /// that has a new one; a piggybacked answer needs the original).
  coap_mid_t mid = 0;
  coap_reply reply;
  std::string dedup_key;
  /// Set for answers nobody waits on in a handler (cache refreshes): runs
  /// when the answer arrives, and the entry goes.
  std::function<void(coap_reply)> on_ready;
};

/// How long a deferred answer may still go piggybacked in the ACK: well
/// inside ACK_TIMEOUT (2 s, RFC 7252 §4.8), so the client has not yet
/// retransmitted (libcoap answers a retransmission of a deferred request
/// with an empty ACK; from then on only a separate response can follow).
/// Piggybacked, a block-wise answer can start in it: libcoap 4.3.1's
/// coap-client cannot follow one that starts in a separate response.
constexpr int64_t piggyback_window_ms = 1000;

using response_callback = std::function<void(client_response)>;

/// The kernel's receive queues of the listening sockets.
struct receive_queue {
  uint64_t buffer = 0;  ///< receive buffer in bytes (the largest socket's)
  double fill = 0;      ///< queued bytes / buffer, the fullest socket (Linux: in quarter-buffer steps)
  uint64_t drops = 0;   ///< datagrams the kernel dropped because it was full
};

class runtime {
public:
  explicit runtime(caf::actor_system& sys);
  virtual ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  /// Descriptors, the companion and the main context (block mode given).
  bool open(uint8_t block_mode, std::string& error);
  /// Listens on addr:port (UDP) with the main context.
  bool listen(const std::string& addr, uint16_t port, std::string& error);
  /// The receive buffers of the sockets bound to `port` hold a burst (a
  /// fleet's datagrams arriving at once): 8 MiB where the kernel allows.
  void enlarge_listen_buffers(uint16_t port);
  /// Requests to ip:port go over DTLS with these credentials from now on
  /// (a session already open there is closed first).
  void set_client_credentials(const std::string& ip, uint16_t port,
                              common::psk_credentials credentials);
  /// Listens on addr:port for DTLS with one pre-shared key: only a peer that
  /// speaks as `credentials.identity` with its key gets a session.
  bool listen_dtls_single(const std::string& addr, uint16_t port,
                          const common::psk_credentials& credentials, std::string& error);
  // -- X.509 (runtime_pki.cpp) ----------------------------------------------------
  /// The certificate, key and CA this runtime shows and verifies peers with
  /// (client sessions, listen_dtls_pki). `own_context`: client sessions go
  /// on a context of their own, for a main context whose server side is set
  /// up otherwise (libcoap 4.3.1 keeps one PKI setup per context).
  void set_certificate(common::certificate_files files, bool own_context);
  /// Requests to ip:port go over DTLS with set_certificate()'s certificate
  /// from now on (instead of a key or plain CoAP), and the peer's
  /// certificate must name `name`: as a host (common::certificate_has_name)
  /// when `as_host`, else as its identity (first DNS SAN, else CN).
  void set_client_certificate(const std::string& ip, uint16_t port, std::string name,
                              bool as_host);
  /// Listens on addr:port for DTLS with set_certificate()'s certificate: only
  /// a peer whose certificate chains to the CA and names `peer_name` (as a
  /// host) gets a session.
  bool listen_dtls_pki(const std::string& addr, uint16_t port, std::string peer_name,
                       std::string& error);
  /// The name a listen_dtls_pki session's peer was verified to have; "" when none.
  std::string verified_name(const coap_session_t* session) const;
  /// How long a request may wait for its answer (also a separate response
  /// promised by an empty ACK, which libcoap itself waits for forever).
  /// The default is beyond libcoap's own retransmission span
  /// (MAX_TRANSMIT_WAIT, 93 s), so a request is never failed here while
  /// libcoap still retransmits it.
  void set_request_timeout(std::chrono::milliseconds timeout) { request_timeout_ms_ = timeout.count(); }
  /// Requests leave from this address (any port) when it is of the
  /// destination's family: a server notifies a node where its requests
  /// came from, so an agent's requests come from the address it listens on.
  void set_client_source(const std::string& address) { client_source_ = address; }
  /// Who sent a request on `session`: its address and port, and what the
  /// transport established about it (identify).
  virtual peer who(const coap_session_t* session);
  /// Fills in identity, role and `secure` (the server's security policy;
  /// by default nothing: anonymous).
  virtual void identify(const coap_session_t*, peer&) {}
  /// The largest block (16..1024 bytes) of a 2.xx answer on `session`
  /// when its client asked for none; 0: as large as the path allows.
  virtual unsigned answer_block_size(coap_session_t*) { return 0; }
  /// Who sent `request`: who(session), and what the request itself says
  /// (the server: credentials in option 4209). False, with `refusal`
  /// filled, when the request is to be refused as it is.
  virtual bool identify_request(const coap_session_t* session, const coap_pdu_t* request,
                                peer& out, coap_reply& refusal);
  /// The listening sockets' buffer, fill and drops (one getsockopt per socket).
  receive_queue receive_queue_state() const;
  /// For how long the main context's sockets have not been found empty
  /// (0 when they were at the end of the last turn): how far behind the loop is.
  int64_t busy_ms() const;
  /// A second context without libcoap's block handling, for requests that
  /// fetch one block at a time (resumable downloads). Created on demand.
  coap_context_t* raw_context();
  // -- block-wise request bodies, oversized datagrams (runtime_blocks.cpp) ------
  /// Takes the request's Block1 block, if it has one (transport/block1.hpp).
  /// True: the handler is to run (no Block1, a deferred answer being sent,
  /// or the last block completed the body, which request_body() now gives).
  /// False: answered here (2.31 Continue, or the error with its JSON body).
  bool take_block1(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                   const coap_string_t* q, coap_pdu_t* resp, size_t max_body);
  /// The body of the request being handled: what take_block1() reassembled
  /// for it, else the payload of its datagram.
  std::string_view request_body(const coap_pdu_t* req) const;
  /// Forgets the reassembled body (the handler has run).
  void release_body();
  /// The largest request body a path takes (the first Uri-Path segment):
  /// told in Size1 when a body does not fit one datagram.
  virtual size_t max_body(std::string_view first_segment) const;
  block1_assembler& uploads() { return uploads_; }
  // -- observation (runtime_observe.cpp) ---------------------------------------
  // Observations are kept here, not by libcoap: libcoap 4.3.1 keys observers
  // by the request (a second token from one endpoint replaces the first,
  // where RFC 7641 §4.1 keys them by endpoint and token), refuses a later
  // block asked for with Observe set (4.00, before any handler), serves the
  // later blocks of a notification without its Observe number, and walks
  // every resource on each reset. Resources made observable here are plain
  // resources to libcoap; respond() registers, answers and ends observations.
  /// `r` may be observed; `get` is its GET handler (called again for every
  /// notification, with the registration request rebuilt).
  void make_observable(coap_resource_t* r, coap_method_handler_t get);
  /// `r` (the unknown-resource handler) serves paths of its own, such as
  /// /nodes/<id>/health: one libcoap resource for any number of them. Its
  /// paths that observable_path() accepts may be observed, each on its own.
  void make_observable_paths(coap_resource_t* r, coap_method_handler_t get);
  /// Which paths served by the make_observable_paths() resource are
  /// observable ("nodes/n1/health": no leading slash).
  virtual bool observable_path(const std::string& path) const;
  bool is_observable(const coap_resource_t* r) const { return get_handlers_.count(r) != 0; }
  /// `path` has its first observer (an observation was established).
  virtual void first_observed(const std::string& path);
  /// The last observer of `path` has gone.
  virtual void unobserved(const std::string& path);
  /// True when `path` has observers.
  bool observed(const std::string& path) const { return observers_of_.count(path) != 0; }
  /// Sends every observer of `path` the current representation (the GET
  /// handler's answer), with the next Observe number.
  void notify_observers(const std::string& path);
  /// Sends the notifications that waited for their client to finish reading
  /// a block-wise one (once per loop turn).
  void notify_due();
  /// Ends every observation of `path` with `final_code` (4.04: it is deleted).
  void end_observations(const std::string& path, uint16_t final_code);
  /// True while a notification is being built (handlers neither defer nor
  /// count it against budgets).
  bool notifying() const { return notifying_ != 0; }
  size_t observation_count() const { return observations_.size(); }
  /// Caps: observations in all and per source address (beyond them a GET
  /// with Observe is answered as a plain GET, RFC 7641 §4.1).
  void set_observation_limits(size_t total, size_t per_source) {
    max_observations_ = total;
    max_observations_per_source_ = per_source;
  }
  /// respond()'s part (runtime_observe.cpp): registers, ends or serves an
  /// observation's answer. True when it filled the response itself.
  bool answer_observed(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                       const coap_string_t* q, coap_pdu_t* resp, const coap_reply& reply);
  /// Installs the companion's behavior (the messages this transport takes).
  void set_behavior(caf::behavior b);
  /// The companion, as an untyped handle.
  caf::actor handle() const;
  /// Who sent the actor message being handled right now.
  caf::strong_actor_ptr current_sender();

  /// Runs the loop until a signal or request_stop(); returns why it stopped.
  stop_reason run();
  /// Called on the loop, outside every libcoap callback, after each turn:
  /// the place to add/delete resources and notify observers. Returns the
  /// milliseconds until it wants to run again (-1: only on the next event)
  /// and sets `worked` when it queued something for libcoap to send.
  std::function<int64_t(bool& worked)> housekeeping;
  void request_stop(stop_reason why);
  bool stopping() const { return stopping_; }

  // -- deferred answers ----------------------------------------------------------
  uint64_t next_id() { return next_id_++; }
  std::unordered_map<uint64_t, std::unique_ptr<pending_request>> pending;
  /// The answer for request `id` arrived (async ones are triggered).
  void complete(uint64_t id, coap_reply reply);
  void remember(const std::string& key, const coap_reply& reply);
  const coap_reply* recall(const std::string& key);

  // -- client requests ---------------------------------------------------------------
  /// Sends a confirmable request; `done` runs on this thread with the answer
  /// (or code 0 and the reason when none came).
  void send_request(const client_request& req, response_callback done);
  /// Requests of the main context leave from the address and port given to
  /// listen() (the server's: an agent obeys only its server's address and
  /// port), through a socket bound beside the listening one (both have
  /// SO_REUSEADDR) and connected to the peer. The kernel gives a connected
  /// socket its peer's datagrams, so while the session lasts, requests from
  /// that peer's address and port (a node that sends from the port it
  /// listens on, as the simulator does) arrive there and are served the
  /// same way. Off: from a port of their own (the agent's requests).
  void send_from_listening_port(bool on) { from_listen_port_ = on; }

  coap_context_t* ctx = nullptr;

protected:
  caf::actor_system& sys_;

private:
  caf::actor_companion* self();
  void drain_mailbox();
  void read_more(coap_context_t* c);
  /// Answers the requests at the head of the plain listening sockets that
  /// are larger than libcoap reads (COAP_RXBUFFER_SIZE: it would read a
  /// truncated datagram and answer a reset): 4.13 with Size1 and Block1.
  /// Also sees the resets and acknowledgements of notifications (libcoap
  /// tells only of those to a CON it still retransmits).
  void screen_datagrams();
  /// A later block at the head of `fd` (`d`: its first `n` bytes) whose
  /// Content-Format is not block 0's: answered 4.08 with JSON and taken off
  /// the socket (true).
  bool screen_block1(int fd, const uint8_t* d, size_t n);
  struct observation {
    coap_resource_t* resource = nullptr;  ///< whose GET handler notifies
    std::string path;                     ///< what is observed (no leading slash)
    coap_session_t* session = nullptr;  ///< referenced while observing
    std::string token;
    std::string source;    ///< the peer's address (per-source cap)
    std::string endpoint;  ///< address|port (resets seen by screen_datagrams)
    std::string query;     ///< as libcoap hands it to handlers
    std::vector<std::pair<uint16_t, std::string>> options;  ///< of the registration
    unsigned szx = 6;      ///< block size of block-wise notifications
    unsigned non_since_con = 0;
    int64_t last_con_ms = 0;
    std::string mid_key;   ///< endpoint|mid of the latest notification
    /// The latest block-wise answer: its later blocks come from it.
    std::shared_ptr<const shared_bytes> body;
    uint64_t etag = 0;
    uint16_t content_format = 50;
    uint32_t number = 0;
    /// While its client reads the later blocks of `body` (steady ms; each
    /// block asked for moves it on), changes wait: a new notification would
    /// replace the blocks under the client's feet.
    int64_t fetching_until = 0;
    bool due = false;  ///< a change waits for the read to end
  };
  std::unordered_map<uint64_t, observation> observations_;
  std::unordered_map<std::string, std::vector<uint64_t>> observers_of_;  ///< by path
  std::unordered_map<std::string, uint64_t> observation_by_token_;  ///< session|token
  std::unordered_map<std::string, uint64_t> observation_by_mid_;    ///< endpoint|mid
  std::unordered_map<std::string, size_t> observations_per_source_;
  std::unordered_map<const coap_resource_t*, coap_method_handler_t> get_handlers_;
  std::unordered_set<const coap_resource_t*> path_resources_;  ///< make_observable_paths()
  std::unordered_map<std::string, uint32_t> observe_numbers_;  ///< by path
  uint64_t next_observation_ = 1;
  uint64_t notifying_ = 0;  ///< the observation a notification is being built for
  std::vector<uint64_t> due_observations_;  ///< notifications waiting for a read to end
  void notify_one(coap_method_handler_t get, uint64_t id, int64_t now);
  size_t max_observations_ = 100000;
  size_t max_observations_per_source_ = 1024;
  uint64_t observe_(coap_resource_t* r, const std::string& path, coap_session_t* s,
                    const coap_pdu_t* req, const coap_string_t* q);
  /// The path `req` observes on `r` ("" when it is not observable).
  std::string observable_path_of(const coap_resource_t* r, const coap_pdu_t* req) const;
  void end_observation(uint64_t id);
  /// Ends the observation `pdu`'s token names on `s`, if any.
  void end_observation_of(coap_session_t* s, const coap_pdu_t* pdu);
  /// A reset or an acknowledgement seen on a plain socket (screen_datagrams).
  void on_empty_message(const std::string& endpoint, uint8_t type, uint16_t mid);
  std::vector<int> plain_fds_;  ///< the plain UDP listening sockets
  block1_assembler uploads_;
  const coap_pdu_t* assembled_for_ = nullptr;
  std::string assembled_;
  static constexpr int max_reads_per_turn = 32;
  int64_t busy_since_ = -1;  ///< when the sockets were first found non-empty; -1: empty
  coap_session_t* client_session(coap_context_t* c, const std::string& ip, uint16_t port,
                                 std::string& error);
  /// The listening address and port in the family of `dst`; false when
  /// there is none (listening on a single address of the other family).
  bool listening_address_for(const coap_address_t& dst, coap_address_t& local) const;

  struct outgoing {
    response_callback done;
    std::string where;
    std::string mid_key;  ///< its entry in outgoing_by_mid_
    coap_session_t* session = nullptr;
    int64_t deadline = 0;  ///< steady ms: failed if not answered by then
    bool manual_blocks = false;  ///< one block asked for: its answer is the block
    std::string body;  ///< the blocks of a block-wise answer so far
  };
  friend coap_response_t on_response(coap_session_t*, const coap_pdu_t*, const coap_pdu_t*,
                                     const coap_mid_t);
  friend void on_nack(coap_session_t*, const coap_pdu_t*, const coap_nack_reason_t,
                      const coap_mid_t);
  void finish(const std::string& key, client_response r);
  /// Fails requests whose answer did not come in time, and resets the
  /// sessions an ICMP error was reported on (see reset_session()).
  void expire_requests();
  void reset_session(coap_session_t* session);

  coap_context_t* raw_ctx_ = nullptr;
  // X.509 (runtime_pki.cpp)
  struct pki_peer {
    std::string name;
    bool as_host = false;
  };
  friend int check_peer_certificate(const char*, const uint8_t*, size_t, coap_session_t*,
                                    unsigned, int, void*);
  friend int on_pki_session_event(coap_session_t*, coap_event_t);
  /// Where PKI client sessions of context `c` go.
  coap_context_t* pki_context(coap_context_t* c);
  coap_session_t* open_client_pki(coap_context_t* c, const coap_address_t& dst,
                                  const std::string& where, const coap_address_t* local);
  /// Releases the idle client sessions to ip:port (their credentials changed).
  void drop_idle_sessions_to(const std::string& where);
  common::certificate_files pki_;
  bool pki_own_context_ = false;
  coap_context_t* pki_ctx_ = nullptr;
  std::unordered_map<std::string, pki_peer> client_pki_;  ///< ip:port
  std::string pki_listen_peer_;  ///< the name listen_dtls_pki admits
  std::unordered_map<const coap_session_t*, std::string> verified_;
  int event_fd_ = -1;
  int signal_fd_ = -1;
  int epoll_fd_ = -1;
  std::vector<int> listen_fds_;  ///< the UDP sockets libcoap listens on
  std::string listen_addr_;      ///< what listen() was given
  uint16_t listen_port_ = 0;
  bool from_listen_port_ = false;
  caf::strong_actor_ptr companion_;
  caf::scoped_execution_unit unit_;
  std::mutex mailbox_mutex_;  // the only lock: between CAF threads and this loop
  std::deque<caf::mailbox_element_ptr> mailbox_;
  uint64_t next_id_ = 1;
  struct cached_answer {
    coap_reply reply;
    int64_t at = 0;
  };
  std::unordered_map<std::string, cached_answer> answered_;
  std::deque<std::string> answered_order_;
  std::unordered_map<std::string, outgoing> outgoing_;           ///< session|token
  std::unordered_map<std::string, std::string> outgoing_by_mid_;  ///< session|mid → key
  std::unordered_map<std::string, coap_session_t*> sessions_;     ///< ctx|ip:port
  std::unordered_map<std::string, common::psk_credentials> client_psk_;  ///< ip:port
  common::psk_credentials own_psk_;  ///< listen_dtls_single's key
  std::unordered_map<coap_session_t*, unsigned> session_use_;      ///< requests outstanding
  int64_t request_timeout_ms_ = 100'000;
  std::string client_source_;
  std::deque<std::pair<int64_t, std::string>> deadlines_;  ///< (deadline, key), in order
  std::vector<coap_session_t*> to_reset_;  ///< ICMP-failed client sessions (referenced)
  bool stopping_ = false;
  stop_reason reason_ = stop_reason::signal;
  int64_t stop_started_ = 0;
};

/// The runtime a libcoap callback belongs to.
runtime* runtime_of(coap_session_t* session);

/// "1.2.3.4" / "::1" and the port of the session's peer.
peer peer_of(const coap_session_t* session);
/// The same for a socket address (an IPv4-mapped IPv6 one in its IPv4 form).
std::pair<std::string, uint16_t> address_port(const sockaddr* sa);

/// Fills `response` with a reply (code, content format, Max-Age, ETag, body;
/// block-wise when larger than one datagram).
void respond(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
             const coap_string_t* query, coap_pdu_t* response, const coap_reply& reply);

/// Registers `fallback` for every request method of `r`, then the given
/// handlers (null: that method keeps the fallback).
void register_methods(coap_resource_t* r, coap_method_handler_t fallback,
                      coap_method_handler_t get, coap_method_handler_t post = nullptr,
                      coap_method_handler_t put = nullptr, coap_method_handler_t del = nullptr);

/// "coap://ADDR:PORT (udp)", an IPv6 address in brackets.
std::string endpoint_uri(const std::string& bind, uint16_t port);

/// IPv4/IPv6 literal + port → address; false when not a literal.
bool make_address(const std::string& ip, uint16_t port, coap_address_t& out);

/// make_address() for an endpoint to listen on: false, with `error` saying
/// why, also when another socket has that address and port (libcoap's
/// SO_REUSEADDR would let both bind; see common/listen_port.hpp).
bool listening_address(const std::string& ip, uint16_t port, coap_address_t& out,
                       std::string& error);

int64_t steady_millis();

/// The Block2 SZX of the largest block of at most `bytes` (16..1024 bytes:
/// 0..6); 6 for 0 (no limit).
unsigned szx_at_most(unsigned bytes);

}  // namespace coapfleet::transport
