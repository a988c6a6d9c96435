// The simulator's setup: file-descriptor limit, one socket per simulated
// node on its own loopback address, the probe that the server answers, stop.
#include "sim/engine.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sim/engine_internal.hpp"

namespace coapfleet::sim {

using namespace internal;

std::string engine::raise_fd_limit() {
  rlim_t need = static_cast<rlim_t>(cfg_.sockets()) + 64;
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return std::string("getrlimit(RLIMIT_NOFILE): ") + std::strerror(errno);
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
    if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need) {
      rl.rlim_cur = need;
      if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return std::string("setrlimit(RLIMIT_NOFILE): ") + std::strerror(errno);
    } else {
      rlimit more{need, need};
      if (setrlimit(RLIMIT_NOFILE, &more) != 0)
        return std::to_string(cfg_.nodes) + " nodes need " + std::to_string(need)
               + " open files (" + std::to_string(cfg_.sockets())
               + " UDP sockets), but the hard limit is " + std::to_string(rl.rlim_max)
               + "; raise it (ulimit -Hn as root, LimitNOFILE=, /etc/security/limits.conf), "
                 "let nodes share sockets (--nodes-per-socket) or simulate fewer nodes";
    }
  }
  return {};
}

std::string engine::open(bool signals, bool probe) {
  if (auto e = validate(cfg_); !e.empty())
    return e;
  if (auto e = raise_fd_limit(); !e.empty())
    return e;
  server_ = make_addr(cfg_.server_ip, cfg_.server_port);
  servers_ = {server_};
  for (auto& [ip, port] : cfg_.other_servers)
    servers_.push_back(make_addr(ip, port));
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0)
    return std::string("epoll_create1: ") + std::strerror(errno);
  auto watch = [&](int fd, uint32_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = tag;
    return epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0;
  };
  stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (stop_fd_ < 0 || !watch(stop_fd_, stop_tag))
    return std::string("eventfd: ") + std::strerror(errno);
  if (signals) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    signal_fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd_ < 0 || !watch(signal_fd_, signal_tag))
      return std::string("signalfd: ") + std::strerror(errno);
  }
  nodes_.resize(cfg_.nodes);
  for (uint32_t i = 0; i < cfg_.nodes; ++i) {
    auto& n = nodes_[i];
    n.sock = i / cfg_.nodes_per_socket;
    n.id = node_id(cfg_.id_prefix, i);
    n.walk.init(rng_);
  }
  socks_.resize(cfg_.sockets());
  for (uint32_t j = 0; j < socks_.size(); ++j) {
    auto& s = socks_[j];
    s.ip = node_address(cfg_.base_ip, j);
    s.first_node = j * cfg_.nodes_per_socket;
    s.next_mid = static_cast<uint16_t>(rng_.next());
    s.fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s.fd < 0)
      return "socket() for node socket " + std::to_string(j + 1) + ": " + std::strerror(errno);
    auto addr = make_addr(s.ip, cfg_.node_port);
    if (::bind(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      int err = errno;
      std::string where = format_ipv4(s.ip) + ":" + std::to_string(cfg_.node_port);
      if (err == EADDRINUSE)
        return "cannot bind " + where + ": address in use (another coapfleet-sim or agent on "
               "these addresses? choose another --base or --node-port)";
      return "cannot bind " + where + ": " + std::strerror(err);
    }
    if (!watch(s.fd, j))
      return std::string("epoll_ctl: ") + std::strerror(errno);
  }
  if (probe)
    return probe_server();
  return {};
}

std::string engine::probe_server() {
  // A CoAP ping (empty CON, answered with RST) from a connected socket, so
  // that ICMP port unreachable reports a missing server at once.
  std::string where = format_ipv4(cfg_.server_ip) + ":" + std::to_string(cfg_.server_port);
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return std::string("socket(): ") + std::strerror(errno);
  auto local = make_addr(socks_.empty() ? INADDR_LOOPBACK : socks_[0].ip, 0);
  std::string result = "no answer to a CoAP ping of " + where + " within 3 s: is the server up?";
  if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0
      || ::connect(fd, reinterpret_cast<const sockaddr*>(&server_), sizeof server_) != 0) {
    result = "cannot reach " + where + ": " + std::strerror(errno);
    ::close(fd);
    return result;
  }
  auto mid = static_cast<uint16_t>(rng_.next());
  for (int attempt = 0; attempt < 6; ++attempt) {
    uint8_t ping[4];
    coap::encode_empty(coap::msg_type::con, mid, ping);
    if (::send(fd, ping, sizeof ping, 0) < 0 && errno == ECONNREFUSED) {
      result = "nothing listens on udp " + where + " (port unreachable): is the server up?";
      break;
    }
    pollfd p{fd, POLLIN, 0};
    int64_t until = mono_ns() + 500 * 1000000LL;
    bool done = false;
    while (!done) {
      int64_t left = until - mono_ns();
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left / 1000000 + 1)) <= 0)
        break;
      uint8_t buf[2048];
      ssize_t len = ::recv(fd, buf, sizeof buf, 0);
      if (len < 0) {
        if (errno == ECONNREFUSED) {
          result = "nothing listens on udp " + where + " (port unreachable): is the server up?";
          done = true;
          attempt = 6;
        }
        break;
      }
      coap::message m;
      if (coap::decode(buf, static_cast<size_t>(len), m) == coap::decode_error::ok
          && m.mid == mid) {
        result.clear();
        done = true;
        attempt = 6;
      }
    }
  }
  ::close(fd);
  return result;
}

void engine::request_stop() {
  uint64_t one = 1;
  if (stop_fd_ >= 0) {
    ssize_t rc = ::write(stop_fd_, &one, sizeof one);
    (void)rc;
  }
}

}  // namespace coapfleet::sim
