#include "transport/dtls_load.hpp"

#include <coap3/coap.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "transport/dtls_client.hpp"
#include "transport/runtime.hpp"

namespace coapfleet::transport {

namespace {

using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point t) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}

struct node_state {
  size_t index = 0;
  coap_session_t* session = nullptr;
  bool registered = false;
  clock_type::time_point sent_at;
};

struct run_state {
  std::vector<node_state> nodes;
  const dtls_load_config* cfg = nullptr;
  size_t registered = 0;
  bool reporting = false;
  /// The measured window; after its end no node sends again. libcoap's
  /// coap_io_process() does not return while every call finds its event
  /// array full (a busy closed loop), so the clock is read here, per answer.
  clock_type::time_point measure_from, measure_until;
  uint64_t answers = 0;
  uint64_t stored = 0;
  uint64_t failed = 0;
  std::vector<double> latencies;
};

run_state* g_run = nullptr;  // libcoap's handlers have no argument of ours

node_state* node_of(coap_session_t* s) {
  return static_cast<node_state*>(coap_session_get_app_data(s));
}

void send(node_state& n, coap_pdu_code_t code, const char* path, const std::string& body) {
  auto* pdu = coap_pdu_init(COAP_MESSAGE_CON, code, coap_new_message_id(n.session),
                            coap_session_max_pdu_size(n.session));
  if (!pdu)
    return;
  uint8_t token[8];
  size_t len = sizeof token;
  coap_session_new_token(n.session, &len, token);
  coap_add_token(pdu, len, token);
  coap_add_option(pdu, COAP_OPTION_URI_PATH, std::char_traits<char>::length(path),
                  reinterpret_cast<const uint8_t*>(path));
  uint8_t cf[4];
  coap_add_option(pdu, COAP_OPTION_CONTENT_FORMAT,
                  coap_encode_var_safe(cf, sizeof cf, COAP_MEDIATYPE_APPLICATION_JSON), cf);
  coap_add_data(pdu, body.size(), reinterpret_cast<const uint8_t*>(body.data()));
  n.sent_at = clock_type::now();
  if (coap_send(n.session, pdu) == COAP_INVALID_MID)
    ++g_run->failed;
}

void next_request(node_state& n) {
  auto& id = g_run->cfg->nodes[n.index].identity;
  if (!n.registered) {
    send(n, COAP_REQUEST_CODE_POST, "nodes",
         "{\"node_id\":\"" + id + "\",\"ip_address\":\"127.0.0.1\",\"port\":9}");
    return;
  }
  if (!g_run->reporting)
    return;  // waits until every node has registered
  send(n, COAP_REQUEST_CODE_PUT, "health",
       "{\"node_id\":\"" + id
         + "\",\"overall_healthy\":true,\"cpu_percent\":12.5,\"memory_percent\":40.1,"
           "\"disk_percent\":55.0,\"services_status\":{\"ssh\":true},\"error_messages\":[]}");
}

coap_response_t on_response(coap_session_t* s, const coap_pdu_t*, const coap_pdu_t* received,
                            const coap_mid_t) {
  auto* n = node_of(s);
  if (!n)
    return COAP_RESPONSE_OK;
  auto code = coap_pdu_get_code(received);
  int c = (code >> 5) * 100 + (code & 0x1f);
  if (!n->registered) {
    if (c == 201) {
      n->registered = true;
      ++g_run->registered;
    } else {
      ++g_run->failed;
    }
  } else if (g_run->reporting) {
    auto now = clock_type::now();
    if (n->sent_at >= g_run->measure_from && now < g_run->measure_until) {
      ++g_run->answers;
      if (c == 204)
        ++g_run->stored;
      g_run->latencies.push_back(ms_since(n->sent_at));
    }
    if (now >= g_run->measure_until)
      return COAP_RESPONSE_OK;  // the window is over: this node stops
  }
  next_request(*n);
  return COAP_RESPONSE_OK;
}

void on_nack(coap_session_t* s, const coap_pdu_t*, const coap_nack_reason_t, const coap_mid_t) {
  ++g_run->failed;
  if (g_run->reporting && clock_type::now() >= g_run->measure_until)
    return;
  if (auto* n = node_of(s))
    next_request(*n);
}

}  // namespace

dtls_load_result run_dtls_load(const dtls_load_config& cfg) {
  dtls_load_result out;
  coap_startup();
  if (!coap_dtls_is_supported()) {
    out.error = "this libcoap has no DTLS support";
    return out;
  }
  coap_address_t dst;
  if (!make_address(cfg.host, cfg.port, dst)) {
    out.error = cfg.host + " is not an IP address";
    return out;
  }
  auto* ctx = coap_new_context(nullptr);
  if (!ctx) {
    out.error = "cannot create a CoAP context";
    return out;
  }
  coap_register_response_handler(ctx, on_response);
  coap_register_nack_handler(ctx, on_nack);
  run_state run;
  run.cfg = &cfg;
  g_run = &run;
  run.nodes.resize(cfg.nodes.size());
  auto started = clock_type::now();
  for (size_t i = 0; i < cfg.nodes.size(); ++i) {
    auto& n = run.nodes[i];
    n.index = i;
    n.session = open_psk_session(ctx, dst, cfg.nodes[i]);
    if (!n.session) {
      out.error = "cannot open DTLS session " + std::to_string(i)
                  + " (out of file descriptors? raise ulimit -n)";
      break;
    }
    coap_session_set_app_data(n.session, &n);
    next_request(n);
  }
  auto deadline = started + std::chrono::duration<double>(cfg.handshake_timeout_s);
  while (out.error.empty() && run.registered < run.nodes.size() && clock_type::now() < deadline)
    coap_io_process(ctx, 50);
  out.sessions = run.registered;
  out.handshake_s = ms_since(started) / 1000.0;
  out.handshakes_per_s = out.handshake_s > 0 ? run.registered / out.handshake_s : 0;
  if (out.error.empty() && run.registered < run.nodes.size())
    out.error = std::to_string(run.nodes.size() - run.registered)
                + " sessions did not register in time";
  if (out.error.empty()) {
    // A second of warm-up, then the measured time; answers to requests
    // sent in the window and arriving in it count.
    run.measure_from = clock_type::now() + std::chrono::seconds(1);
    run.measure_until = run.measure_from + std::chrono::duration_cast<clock_type::duration>(
                                             std::chrono::duration<double>(cfg.duration_s));
    run.reporting = true;
    for (auto& n : run.nodes)
      next_request(n);
    while (clock_type::now() < run.measure_until)
      coap_io_process(ctx, 50);
    // What is still in flight drains (nobody sends any more).
    auto drain = clock_type::now() + std::chrono::milliseconds(500);
    while (clock_type::now() < drain)
      coap_io_process(ctx, 20);
    double secs = cfg.duration_s;
    out.answers = run.answers;
    out.stored = run.stored;
    out.stored_per_s = secs > 0 ? run.stored / secs : 0;
    auto& l = run.latencies;
    if (!l.empty()) {
      std::sort(l.begin(), l.end());
      out.p50_ms = l[l.size() / 2];
      out.p99_ms = l[std::min(l.size() - 1, l.size() * 99 / 100)];
    }
  }
  out.failed = run.failed;
  for (auto& n : run.nodes)
    if (n.session)
      coap_session_release(n.session);
  coap_free_context(ctx);
  g_run = nullptr;
  return out;
}

}  // namespace coapfleet::transport
