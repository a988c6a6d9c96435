#include "transport/runtime.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <linux/sock_diag.h>
#include <unistd.h>

#include "common/log.hpp"
#include "transport/runtime_internal.hpp"

namespace coapfleet::transport {

// -- runtime -------------------------------------------------------------------------------

runtime::runtime(caf::actor_system& sys) : sys_(sys), unit_(&sys) {
}

runtime::~runtime() {
  if (companion_) {
    self()->on_enqueue(nullptr);
    self()->cleanup(caf::error{}, &unit_);
  }
  for (auto& kv : sessions_)
    coap_session_release(kv.second);
  sessions_.clear();
  for (auto* s : to_reset_)
    coap_session_release(s);
  to_reset_.clear();
  std::vector<uint64_t> observing;
  for (auto& kv : observations_)
    observing.push_back(kv.first);
  for (auto id : observing)
    end_observation(id);
  if (ctx)
    coap_free_context(ctx);
  if (raw_ctx_)
    coap_free_context(raw_ctx_);
  if (pki_ctx_)
    coap_free_context(pki_ctx_);
  for (int fd : {event_fd_, signal_fd_, epoll_fd_})
    if (fd >= 0)
      ::close(fd);
  coap_cleanup();
}

caf::actor_companion* runtime::self() {
  return static_cast<caf::actor_companion*>(caf::actor_cast<caf::abstract_actor*>(companion_));
}

caf::actor runtime::handle() const {
  return caf::actor_cast<caf::actor>(companion_);
}

caf::strong_actor_ptr runtime::current_sender() {
  return self()->current_sender();
}

void runtime::set_behavior(caf::behavior b) {
  self()->become(std::move(b));
}

void runtime::drain_mailbox() {
  std::deque<caf::mailbox_element_ptr> batch;
  {
    std::lock_guard<std::mutex> guard{mailbox_mutex_};
    batch.swap(mailbox_);
  }
  for (auto& m : batch)
    self()->activate(&unit_, *m);
}

void runtime::complete(uint64_t id, coap_reply reply) {
  auto i = pending.find(id);
  if (i == pending.end())
    return;  // the client went away meanwhile
  if (i->second->on_ready) {
    auto f = std::move(i->second->on_ready);
    pending.erase(i);
    f(std::move(reply));
    return;
  }
  i->second->reply = std::move(reply);
  i->second->ready = true;
  // An async write: libcoap calls the resource handler again with the
  // original request, which then sends this reply as a separate response.
  if (i->second->async != nullptr)
    coap_async_trigger(i->second->async);
}

void runtime::remember(const std::string& key, const coap_reply& reply) {
  constexpr size_t capacity = 8192;
  if (key.empty())
    return;
  auto copy = reply;
  copy.shared_body.reset();  // big bodies are never replayed from here
  answered_[key] = cached_answer{std::move(copy), steady_millis()};
  answered_order_.push_back(key);
  while (answered_order_.size() > capacity) {
    answered_.erase(answered_order_.front());
    answered_order_.pop_front();
  }
}

const coap_reply* runtime::recall(const std::string& key) {
  constexpr int64_t exchange_lifetime_ms = 247000;
  auto i = answered_.find(key);
  if (i == answered_.end() || steady_millis() - i->second.at > exchange_lifetime_ms)
    return nullptr;
  return &i->second.reply;
}

void runtime::request_stop(stop_reason why) {
  if (stopping_)
    return;
  stopping_ = true;
  reason_ = why;
  stop_started_ = steady_millis();
  CF_INFO("transport", "stopping (", why == stop_reason::restart ? "restart"
                                     : why == stop_reason::shutdown ? "shutdown" : "signal",
          "): delivering what is in flight");
}

bool runtime::open(uint8_t block_mode, std::string& error) {
  coap_startup();
  coap_set_log_level(log::enabled(log::level::trace) ? LOG_DEBUG : LOG_EMERG);
  event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  signal_fd_ = ::signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (event_fd_ < 0 || signal_fd_ < 0 || epoll_fd_ < 0) {
    error = std::string("cannot create event descriptors: ") + std::strerror(errno);
    return false;
  }
  // The bridge: actors enqueue into our mailbox and wake the loop by eventfd.
  companion_ = caf::actor_cast<caf::strong_actor_ptr>(sys_.spawn<caf::actor_companion>());
  self()->on_enqueue([this](caf::mailbox_element_ptr ptr) {
    {
      std::lock_guard<std::mutex> guard{mailbox_mutex_};
      mailbox_.push_back(std::move(ptr));
    }
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(event_fd_, &one, sizeof one);
  });
  ctx = coap_new_context(nullptr);
  if (!ctx) {
    error = "cannot create a CoAP context";
    return false;
  }
  coap_set_app_data(ctx, this);
  coap_context_set_block_mode(ctx, block_mode);
  coap_register_response_handler(ctx, on_response);
  coap_register_nack_handler(ctx, on_nack);
  return true;
}

namespace {

/// libcoap 4.3.1 does not expose an endpoint's socket: find the UDP sockets
/// bound to `port` among our descriptors and give each a receive buffer that
/// holds a burst from a large fleet (the kernel default holds ~200 requests).
std::vector<int> enlarge_receive_buffer(uint16_t port, int bytes) {
  std::vector<int> found;
  for (int fd = 3; fd < 4096; ++fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int type = 0;
    socklen_t tlen = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_DGRAM)
      continue;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
      continue;
    uint16_t p = ss.ss_family == AF_INET
                   ? ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port)
                   : ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                              : 0;
    if (p != port)
      continue;
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0)
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    found.push_back(fd);
  }
  return found;
}

}  // namespace

void runtime::enlarge_listen_buffers(uint16_t port) {
  for (int fd : enlarge_receive_buffer(port, 4 * 1024 * 1024))
    listen_fds_.push_back(fd);
}

bool runtime::listen(const std::string& addr, uint16_t port, std::string& error) {
  coap_address_t a;
  if (!listening_address(addr, port, a, error))
    return false;
  if (!coap_new_endpoint(ctx, &a, COAP_PROTO_UDP)) {
    error = "cannot listen on " + addr + ":" + std::to_string(port)
            + " (address in use or not local?)";
    return false;
  }
  auto known = listen_fds_.size();
  enlarge_listen_buffers(port);
  plain_fds_.insert(plain_fds_.end(), listen_fds_.begin() + known, listen_fds_.end());
  listen_addr_ = addr;
  listen_port_ = port;
  return true;
}

namespace {

const coap_bin_const_t* own_key_only(coap_bin_const_t* identity, coap_session_t*, void* arg) {
  auto& own = *static_cast<const common::psk_credentials*>(arg);
  std::string id(reinterpret_cast<const char*>(identity->s), identity->length);
  if (id != own.identity)
    return nullptr;
  static thread_local coap_bin_const_t out;
  out.s = reinterpret_cast<const uint8_t*>(own.key.data());
  out.length = own.key.size();
  return &out;
}

}  // namespace

bool runtime::listen_dtls_single(const std::string& addr, uint16_t port,
                                 const common::psk_credentials& credentials,
                                 std::string& error) {
  if (!coap_dtls_is_supported()) {
    error = "this libcoap has no DTLS support";
    return false;
  }
  own_psk_ = credentials;
  coap_dtls_spsk_t spsk;
  std::memset(&spsk, 0, sizeof spsk);
  spsk.version = COAP_DTLS_SPSK_SETUP_VERSION;
  spsk.validate_id_call_back = own_key_only;
  spsk.id_call_back_arg = &own_psk_;
  if (!coap_context_set_psk2(ctx, &spsk)) {
    error = "cannot set up DTLS with the pre-shared key";
    return false;
  }
  coap_address_t a;
  if (!listening_address(addr, port, a, error))
    return false;
  if (!coap_new_endpoint(ctx, &a, COAP_PROTO_DTLS)) {
    error = "cannot listen for DTLS on " + addr + ":" + std::to_string(port)
            + " (address in use or not local?)";
    return false;
  }
  return true;
}

receive_queue runtime::receive_queue_state() const {
  receive_queue out;
  for (int fd : listen_fds_) {
    uint32_t mem[SK_MEMINFO_VARS] = {};
    socklen_t len = sizeof mem;
    if (::getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0 || len < sizeof(uint32_t) * 2)
      continue;
    out.buffer = std::max<uint64_t>(out.buffer, mem[SK_MEMINFO_RCVBUF]);
    if (mem[SK_MEMINFO_RCVBUF] > 0)
      out.fill = std::max(out.fill, static_cast<double>(mem[SK_MEMINFO_RMEM_ALLOC])
                                      / mem[SK_MEMINFO_RCVBUF]);
    if (len >= sizeof(uint32_t) * (SK_MEMINFO_DROPS + 1))
      out.drops += mem[SK_MEMINFO_DROPS];
  }
  return out;
}

coap_context_t* runtime::raw_context() {
  if (raw_ctx_)
    return raw_ctx_;
  raw_ctx_ = coap_new_context(nullptr);
  if (!raw_ctx_)
    return ctx;
  coap_set_app_data(raw_ctx_, this);
  coap_context_set_block_mode(raw_ctx_, 0);
  coap_register_response_handler(raw_ctx_, on_response);
  coap_register_nack_handler(raw_ctx_, on_nack);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = coap_context_get_coap_fd(raw_ctx_);
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, ev.data.fd, &ev);
  return raw_ctx_;
}

/// coap_io_process() reads one datagram per socket, and walks every session
/// first (timers, idle sessions): under load that walk would come once per
/// datagram. Read what else is waiting, a bounded number, before the next
/// turn; libcoap's own epoll set says which sockets are readable. Notes when
/// the sockets were last found empty: how long they have not been is the
/// time this loop has been behind (see busy_ms()).
void runtime::read_more(coap_context_t* c) {
  int fd = coap_context_get_coap_fd(c);
  for (int round = 0; round < max_reads_per_turn; ++round) {
    epoll_event events[8];
    int n = ::epoll_wait(fd, events, 8, 0);
    bool readable = false;
    for (int i = 0; i < n; ++i)
      readable = readable || events[i].data.ptr != nullptr;  // null: libcoap's timer
    if (!readable) {
      busy_since_ = -1;
      return;
    }
    if (busy_since_ < 0)
      busy_since_ = steady_millis();
    if (c == ctx)
      screen_datagrams();
    coap_io_do_epoll(c, events, static_cast<size_t>(n));
  }
}

int64_t runtime::busy_ms() const {
  return busy_since_ < 0 ? 0 : steady_millis() - busy_since_;
}

stop_reason runtime::run() {
  auto add = [&](int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  };
  add(coap_context_get_coap_fd(ctx));
  add(event_fd_);
  add(signal_fd_);
  drain_mailbox();
  coap_io_process(ctx, COAP_IO_NO_WAIT);
  epoll_event events[8];
  int64_t wait_ms = 1000;
  for (;;) {
    // libcoap's own epoll fd also carries its retransmission timer; the
    // one-second cap is only a safety net, never a polling interval.
    int n = ::epoll_wait(epoll_fd_, events, 8,
                         stopping_ ? 20 : static_cast<int>(std::clamp<int64_t>(wait_ms, 0, 1000)));
    for (int i = 0; i < n; ++i) {
      if (events[i].data.fd == event_fd_) {
        uint64_t count;
        while (::read(event_fd_, &count, sizeof count) > 0) {
        }
        drain_mailbox();
      } else if (events[i].data.fd == signal_fd_) {
        signalfd_siginfo info;
        while (::read(signal_fd_, &info, sizeof info) > 0)
          CF_INFO("transport", "signal ", info.ssi_signo, " from pid ", info.ssi_pid);
        request_stop(stop_reason::signal);
      }
    }
    screen_datagrams();
    coap_io_process(ctx, COAP_IO_NO_WAIT);
    read_more(ctx);
    if (raw_ctx_)
      coap_io_process(raw_ctx_, COAP_IO_NO_WAIT);
    if (pki_ctx_)
      coap_io_process(pki_ctx_, COAP_IO_NO_WAIT);
    expire_requests();
    uploads_.expire(steady_millis());
    notify_due();
    wait_ms = 1000;
    if (housekeeping) {
      // libcoap walks every session on each coap_io_process: work queued
      // here goes out on the next turn, which comes at once (wait 0).
      bool worked = false;
      auto next = housekeeping(worked);
      if (next >= 0)
        wait_ms = next;
      if (worked)
        wait_ms = 0;
    }
    // Stop once nothing waits for an acknowledgement (libcoap keeps finished
    // block-wise bodies around for a while, hence the cap).
    if (stopping_) {
      auto spent = steady_millis() - stop_started_;
      if ((coap_can_exit(ctx) && spent > 50) || spent > 500)
        break;
    }
  }
  return reason_;
}

}  // namespace coapfleet::transport
