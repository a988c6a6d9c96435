#include "transport/server_transport.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "actors/log.hpp"
#include "transport/server_impl.hpp"

namespace coapfleet::transport {

int64_t steady_millis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

server_transport::impl::impl(caf::actor_system& sys, server_transport_config cfg)
  : sys(sys), cfg(std::move(cfg)), unit(&sys) {
}

server_transport::impl::~impl() {
  if (companion) {
    self()->on_enqueue(nullptr);
    self()->cleanup(caf::error{}, &unit);
  }
  for (auto& kv : client_sessions)
    coap_session_release(kv.second);
  client_sessions.clear();
  if (ctx)
    coap_free_context(ctx);
  for (int fd : {event_fd, signal_fd, epoll_fd})
    if (fd >= 0)
      ::close(fd);
  coap_cleanup();
}

caf::actor_companion* server_transport::impl::self() {
  return static_cast<caf::actor_companion*>(caf::actor_cast<caf::abstract_actor*>(companion));
}

void server_transport::impl::drain_mailbox() {
  std::deque<caf::mailbox_element_ptr> batch;
  {
    std::lock_guard<std::mutex> guard{mailbox_mutex};
    batch.swap(mailbox);
  }
  for (auto& m : batch)
    self()->activate(&unit, *m);
}

void server_transport::impl::complete(uint64_t id, coap_reply reply) {
  auto i = pending.find(id);
  if (i == pending.end())
    return;  // the client's session went away meanwhile
  i->second->reply = std::move(reply);
  i->second->ready = true;
  if (i->second->async == nullptr)
    return;  // a read: its handler is waiting in wait_for()
  // libcoap calls the resource handler again with the original request,
  // which then sends this reply as a separate response.
  coap_async_trigger(i->second->async);
}

bool server_transport::impl::wait_for(const pending_request& p, unsigned timeout_ms) {
  auto deadline = steady_millis() + timeout_ms;
  pollfd fds{event_fd, POLLIN, 0};
  drain_mailbox();
  while (!p.ready) {
    auto left = deadline - steady_millis();
    if (left <= 0)
      return false;
    if (::poll(&fds, 1, static_cast<int>(left)) > 0) {
      uint64_t count;
      while (::read(event_fd, &count, sizeof count) > 0) {
      }
    }
    drain_mailbox();
  }
  return true;
}

void server_transport::impl::remember(const std::string& key, const coap_reply& reply) {
  constexpr size_t capacity = 8192;
  if (key.empty())
    return;
  answered[key] = cached_answer{reply, steady_millis()};
  answered_order.push_back(key);
  while (answered_order.size() > capacity) {
    answered.erase(answered_order.front());
    answered_order.pop_front();
  }
}

const coap_reply* server_transport::impl::recall(const std::string& key) {
  constexpr int64_t exchange_lifetime_ms = 247000;
  auto i = answered.find(key);
  if (i == answered.end() || steady_millis() - i->second.at > exchange_lifetime_ms)
    return nullptr;
  return &i->second.reply;
}

void server_transport::impl::request_stop(stop_reason why) {
  if (stopping)
    return;
  stopping = true;
  reason = why;
  stop_deadline = steady_millis() + 2000;
  stop_started = steady_millis();
  CF_INFO("transport", "stopping (", why == stop_reason::restart ? "restart"
                                     : why == stop_reason::shutdown ? "shutdown" : "signal",
          "): delivering what is in flight");
}

// -- notifications to agents -------------------------------------------------------

namespace {

std::string session_key(const coap_session_t* s, const std::string& suffix) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p|", static_cast<const void*>(s));
  return buf + suffix;
}

std::string token_string(coap_bin_const_t t) {
  return std::string(reinterpret_cast<const char*>(t.s), t.length);
}

bool make_address(const std::string& ip, uint16_t port, coap_address_t& out) {
  coap_address_init(&out);
  if (inet_pton(AF_INET, ip.c_str(), &out.addr.sin.sin_addr) == 1) {
    out.addr.sin.sin_family = AF_INET;
    out.addr.sin.sin_port = htons(port);
    out.size = sizeof(out.addr.sin);
    return true;
  }
  if (inet_pton(AF_INET6, ip.c_str(), &out.addr.sin6.sin6_addr) == 1) {
    out.addr.sin6.sin6_family = AF_INET6;
    out.addr.sin6.sin6_port = htons(port);
    out.size = sizeof(out.addr.sin6);
    return true;
  }
  return false;
}

void release_string(coap_session_t*, void* app_ptr) {
  delete static_cast<std::string*>(app_ptr);
}

coap_response_t on_response(coap_session_t* session, const coap_pdu_t* sent,
                            const coap_pdu_t* received, const coap_mid_t) {
  auto* t = transport_of(session);
  auto key = session_key(session, token_string(coap_pdu_get_token(received)));
  if (!t->outgoing.count(key))
    return COAP_RESPONSE_OK;
  auto code = coap_pdu_get_code(received);
  int cls = code >> 5, detail = code & 0x1f;
  if (cls == 2) {
    t->finish_outgoing(key, true, {});
  } else {
    size_t len = 0;
    const uint8_t* data = nullptr;
    std::string body;
    if (coap_get_data(received, &len, &data) && len > 0)
      body.assign(reinterpret_cast<const char*>(data), std::min<size_t>(len, 200));
    char code_text[16];
    std::snprintf(code_text, sizeof code_text, "%d.%02d", cls, detail);
    t->finish_outgoing(key, false,
                       "agent at " + t->outgoing[key].where + " refused the notification: "
                         + code_text + (body.empty() ? "" : " " + body));
  }
  (void) sent;
  return COAP_RESPONSE_OK;
}

void on_nack(coap_session_t* session, const coap_pdu_t* sent, const coap_nack_reason_t reason,
             const coap_mid_t mid) {
  auto* t = transport_of(session);
  std::string key;
  if (sent)
    key = session_key(session, token_string(coap_pdu_get_token(sent)));
  if (!t->outgoing.count(key)) {
    auto i = t->outgoing_by_mid.find(session_key(session, std::to_string(mid)));
    if (i == t->outgoing_by_mid.end())
      return;
    key = i->second;
  }
  if (!t->outgoing.count(key))
    return;
  const char* why = reason == COAP_NACK_TOO_MANY_RETRIES ? "no answer after all retransmissions"
                    : reason == COAP_NACK_NOT_DELIVERABLE ? "not deliverable"
                    : reason == COAP_NACK_ICMP_ISSUE      ? "ICMP error (port unreachable?)"
                    : reason == COAP_NACK_RST             ? "reset by peer"
                                                          : "transport failure";
  t->finish_outgoing(key, false,
                     "agent unreachable at " + t->outgoing[key].where + ": " + why);
}

}  // namespace

void server_transport::impl::finish_outgoing(const std::string& key, bool ok, std::string detail) {
  auto i = outgoing.find(key);
  if (i == outgoing.end())
    return;
  caf::anon_send(i->second.job, atom::notified::value, i->second.node_id, ok, std::move(detail));
  outgoing.erase(i);
  for (auto j = outgoing_by_mid.begin(); j != outgoing_by_mid.end();)
    j = j->second == key ? outgoing_by_mid.erase(j) : std::next(j);
}

void server_transport::impl::send_notification(job_actor job, const std::string& ip,
                                               uint16_t port,
                                               const model::update_notification& note) {
  auto where = ip + ":" + std::to_string(port);
  auto fail = [&](const std::string& why) {
    CF_WARN("transport", "notification of ", note.node_id, " for job ", note.job_id,
            " failed: ", why);
    caf::anon_send(job, atom::notified::value, note.node_id, false,
                   "cannot notify agent at " + where + ": " + why);
  };
  coap_session_t* session = nullptr;
  auto s = client_sessions.find(where);
  if (s != client_sessions.end()) {
    session = s->second;
  } else {
    coap_address_t dst;
    if (!make_address(ip, port, dst))
      return fail("not an IP address");
    session = coap_new_client_session(ctx, nullptr, &dst, COAP_PROTO_UDP);
    if (!session)
      return fail("cannot create a CoAP session");
    client_sessions.emplace(where, session);
  }
  auto* pdu = coap_new_pdu(COAP_MESSAGE_CON, COAP_REQUEST_CODE_POST, session);
  if (!pdu)
    return fail("cannot allocate a PDU");
  uint8_t token[8];
  size_t token_len = 0;
  coap_session_new_token(session, &token_len, token);
  coap_add_token(pdu, token_len, token);
  coap_add_option(pdu, COAP_OPTION_URI_PATH, 7, reinterpret_cast<const uint8_t*>("updates"));
  coap_add_option(pdu, COAP_OPTION_URI_PATH, 9, reinterpret_cast<const uint8_t*>("available"));
  uint8_t cf[4];
  coap_add_option(pdu, COAP_OPTION_CONTENT_FORMAT,
                  coap_encode_var_safe(cf, sizeof cf, COAP_MEDIATYPE_APPLICATION_JSON), cf);
  auto* body = new std::string(model::encode_update_notification(note));
  coap_add_data_large_request(session, pdu, body->size(),
                              reinterpret_cast<const uint8_t*>(body->data()), release_string, body);
  auto key = session_key(session, std::string(reinterpret_cast<char*>(token), token_len));
  outgoing[key] = outgoing_request{std::move(job), note.node_id, where};
  auto mid = coap_send(session, pdu);
  if (mid == COAP_INVALID_MID) {
    outgoing.erase(key);
    return fail("send failed");
  }
  outgoing_by_mid[session_key(session, std::to_string(mid))] = key;
  CF_DEBUG("transport", "notified ", note.node_id, " at ", where, " of job ", note.job_id);
}

// -- server_transport ------------------------------------------------------------------

server_transport::server_transport(caf::actor_system& sys, server_transport_config cfg)
  : impl_(std::make_unique<impl>(sys, std::move(cfg))) {
}

server_transport::~server_transport() = default;

transport_actor server_transport::handle() const {
  return caf::actor_cast<transport_actor>(impl_->companion);
}

void server_transport::set_gateway(gateway_actor gateway) {
  impl_->gateway = std::move(gateway);
}

std::string server_transport::endpoint_description() const {
  return "coap://" + (impl_->cfg.bind.find(':') != std::string::npos ? "[" + impl_->cfg.bind + "]"
                                                                      : impl_->cfg.bind)
         + ":" + std::to_string(impl_->cfg.port) + " (udp)";
}

bool server_transport::open(std::string& error) {
  auto& d = *impl_;
  coap_startup();
  coap_set_log_level(log::enabled(log::level::trace) ? LOG_DEBUG : LOG_EMERG);
  // The bridge: actors enqueue into our mailbox and wake the loop by eventfd.
  d.event_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  d.signal_fd = ::signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
  d.epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (d.event_fd < 0 || d.signal_fd < 0 || d.epoll_fd < 0) {
    error = std::string("cannot create event descriptors: ") + std::strerror(errno);
    return false;
  }
  d.companion = caf::actor_cast<caf::strong_actor_ptr>(d.sys.spawn<caf::actor_companion>());
  auto* dp = &d;
  d.self()->on_enqueue([dp](caf::mailbox_element_ptr ptr) {
    {
      std::lock_guard<std::mutex> guard{dp->mailbox_mutex};
      dp->mailbox.push_back(std::move(ptr));
    }
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(dp->event_fd, &one, sizeof one);
  });
  d.self()->become(
    [dp](atom::route, std::string& node_id, node_actor& node) {
      dp->routes[std::move(node_id)] = std::move(node);
    },
    [dp](atom::notify, job_actor& job, std::string& ip, uint16_t port,
         model::update_notification& note) { dp->send_notification(job, ip, port, note); },
    [dp](atom::reply, uint64_t id, coap_reply& reply) { dp->complete(id, std::move(reply)); });

  d.ctx = coap_new_context(nullptr);
  if (!d.ctx) {
    error = "cannot create a CoAP context";
    return false;
  }
  coap_set_app_data(d.ctx, &d);
  coap_context_set_block_mode(d.ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
  coap_context_set_session_timeout(d.ctx, d.cfg.session_timeout_s);
  coap_context_set_max_idle_sessions(d.ctx, d.cfg.max_idle_sessions);
  coap_register_response_handler(d.ctx, on_response);
  coap_register_nack_handler(d.ctx, on_nack);
  coap_address_t addr;
  if (!make_address(d.cfg.bind, d.cfg.port, addr)) {
    error = "--bind " + d.cfg.bind + " is not an IPv4 or IPv6 address";
    return false;
  }
  if (!coap_new_endpoint(d.ctx, &addr, COAP_PROTO_UDP)) {
    error = "cannot listen on " + endpoint_description() + " (address in use or not local?)";
    return false;
  }
  if (!d.register_resources()) {
    error = "cannot register CoAP resources";
    return false;
  }
  return true;
}

stop_reason server_transport::run() {
  auto& d = *impl_;
  auto add = [&](int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    ::epoll_ctl(d.epoll_fd, EPOLL_CTL_ADD, fd, &ev);
  };
  int coap_fd = coap_context_get_coap_fd(d.ctx);
  add(coap_fd);
  add(d.event_fd);
  add(d.signal_fd);
  d.drain_mailbox();
  coap_io_process(d.ctx, COAP_IO_NO_WAIT);
  epoll_event events[8];
  for (;;) {
    // libcoap's own epoll fd also carries its retransmission timer; the
    // one-second cap is only a safety net, never a polling interval.
    int n = ::epoll_wait(d.epoll_fd, events, 8, d.stopping ? 20 : 1000);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.fd == d.event_fd) {
        uint64_t count;
        while (::read(d.event_fd, &count, sizeof count) > 0) {
        }
        d.drain_mailbox();
      } else if (events[i].data.fd == d.signal_fd) {
        signalfd_siginfo info;
        while (::read(d.signal_fd, &info, sizeof info) > 0) {
        }
        d.request_stop(stop_reason::signal);
      }
    }
    coap_io_process(d.ctx, COAP_IO_NO_WAIT);
    // Stop once nothing waits for an acknowledgement (libcoap keeps finished
    // block-wise bodies around for a while, hence the cap), or at the deadline.
    if (d.stopping
        && ((coap_can_exit(d.ctx) && steady_millis() - d.stop_started > 50)
            || steady_millis() - d.stop_started > 500 || steady_millis() > d.stop_deadline))
      break;
  }
  return d.reason;
}

}  // namespace coapfleet::transport
