// coapfleet-dtls-load: the benchmark's DTLS load. Nodes (identity and key per
// line of --keys, as `coapfleet-server keys add` printed them) each open their
// own DTLS session to the server, register, then report health with one
// request in flight each. Loopback servers only.
//
//   coapfleet-dtls-load --server coaps://127.0.0.1:5684 --keys nodes.keys --duration 10
#include <sys/resource.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "transport/dtls_load.hpp"

using namespace coapfleet;

int main(int argc, char** argv) {
  std::string server = "coaps://127.0.0.1:5684";
  std::string keys_path;
  double duration = 10;
  bool json = false;
  CLI::App app{"coapfleet-dtls-load: DTLS (PSK) load against a coapfleet server on loopback"};
  app.add_option("--server", server, "coaps://127.x.y.z:PORT")->capture_default_str();
  app.add_option("--keys", keys_path, "file of \"IDENTITY KEY\" lines, one node each")->required();
  app.add_option("--duration", duration, "seconds of health reports")->capture_default_str();
  app.add_flag("--json", json, "one JSON object on stdout");
  CLI11_PARSE(app, argc, argv);

  transport::dtls_load_config cfg;
  cfg.duration_s = duration;
  const std::string scheme = "coaps://";
  if (server.compare(0, scheme.size(), scheme) != 0) {
    std::fprintf(stderr, "--server must be coaps://127.x.y.z:PORT\n");
    return 2;
  }
  auto rest = server.substr(scheme.size());
  auto colon = rest.rfind(':');
  cfg.host = rest.substr(0, colon);
  if (colon != std::string::npos)
    cfg.port = static_cast<uint16_t>(std::stoi(rest.substr(colon + 1)));
  if (cfg.host.compare(0, 4, "127.") != 0) {
    std::fprintf(stderr, "refusing %s: the load generator sends only to loopback\n",
                 cfg.host.c_str());
    return 2;
  }
  std::ifstream in(keys_path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    common::psk_credentials c;
    if (fields >> c.identity >> c.key)
      cfg.nodes.push_back(std::move(c));
  }
  if (cfg.nodes.empty()) {
    std::fprintf(stderr, "no \"IDENTITY KEY\" lines in %s\n", keys_path.c_str());
    return 2;
  }
  // One socket per session.
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  auto r = transport::run_dtls_load(cfg);
  if (json) {
    std::printf("{\"sessions\":%zu,\"handshake_s\":%.3f,\"handshakes_per_s\":%.1f,"
                "\"answers\":%llu,\"stored\":%llu,\"stored_per_s\":%.1f,\"p50_ms\":%.3f,"
                "\"p99_ms\":%.3f,\"failed\":%llu,\"error\":\"%s\"}\n",
                r.sessions, r.handshake_s, r.handshakes_per_s,
                static_cast<unsigned long long>(r.answers),
                static_cast<unsigned long long>(r.stored), r.stored_per_s, r.p50_ms, r.p99_ms,
                static_cast<unsigned long long>(r.failed), r.error.c_str());
  } else {
    std::printf("sessions %zu registered in %.2f s (%.0f handshakes/s)\n", r.sessions,
                r.handshake_s, r.handshakes_per_s);
    std::printf("PUT /health stored %.0f/s (%llu answers), p50 %.2f ms p99 %.2f ms, %llu failed\n",
                r.stored_per_s, static_cast<unsigned long long>(r.answers), r.p50_ms, r.p99_ms,
                static_cast<unsigned long long>(r.failed));
    if (!r.error.empty())
      std::printf("error: %s\n", r.error.c_str());
  }
  return r.error.empty() ? 0 : 1;
}
