#include "main/cli/context.hpp"

#include "common/certificate_files.hpp"
#include "common/key_file.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>

namespace coapfleet::cli {

const char* const exit_code_help =
  "Exit codes:\n"
  "  0  success\n"
  "  1  the job ended failed, partially_failed or cancelled (update watch / run)\n"
  "  2  usage error (unknown command or option, missing or invalid argument)\n"
  "  3  the server answered a CoAP error (4.xx / 5.xx; code and message on stderr),\n"
  "     or an upload whose stored SHA-256 differs from the local file's\n"
  "  4  no answer from the server within --timeout (or the port is unreachable)\n"
  "  130  interrupted (Ctrl-C) while watching; the job goes on on the server\n"
  "Global options go before or after the subcommand: --server, --json, --timeout.\n"
  "Environment: COAPFLEET_SERVER (default --server), COAPFLEET_IDENTITY, COAPFLEET_KEY_FILE,\n"
  "  COAPFLEET_CERT, COAPFLEET_KEY, COAPFLEET_CA, COAPFLEET_SERVER_NAME (the options of those\n"
  "  names), NO_COLOR (no colours or bars).";

client::blocking_client* context::client() {
  if (client_)
    return client_.get();
  std::string error;
  auto uri = client::parse_server_uri(options.server, error);
  if (!uri) {
    std::cerr << "coapfleet: " << error << "\n";
    return nullptr;
  }
  const bool x509 = !options.cert_file.empty() || !options.cert_key_file.empty()
                    || !options.ca_file.empty();
  if (x509 && !uri->secure) {
    std::cerr << "coapfleet: --cert/--key/--ca are for a coaps:// server, not " << uri->text
              << "\n";
    return nullptr;
  }
  if (!options.server_name.empty() && !x509) {
    std::cerr << "coapfleet: --server-name goes with --cert/--key/--ca\n";
    return nullptr;
  }
  if (x509) {
    if (!options.identity.empty() || !options.key_file.empty()) {
      std::cerr << "coapfleet: give either --identity/--key-file (a pre-shared key) or "
                   "--cert/--key/--ca (a certificate), not both\n";
      return nullptr;
    }
    uri->certificate = common::certificate_files{options.cert_file, options.cert_key_file,
                                                 options.ca_file};
    if (!common::check_certificate_files(uri->certificate, error)) {
      std::cerr << "coapfleet: " << error << "\n";
      return nullptr;
    }
    uri->server_name = options.server_name.empty() ? uri->written_host : options.server_name;
    if (!common::valid_peer_name(uri->server_name)) {
      std::cerr << "coapfleet: --server-name must be 1..253 printable characters without "
                   "spaces\n";
      return nullptr;
    }
  } else if (uri->secure) {
    if (options.identity.empty() || options.key_file.empty()) {
      std::cerr << "coapfleet: " << uri->text
                << " is DTLS: give --identity and --key-file (or $COAPFLEET_IDENTITY and "
                   "$COAPFLEET_KEY_FILE), or --cert, --key and --ca ($COAPFLEET_CERT, "
                   "$COAPFLEET_KEY, $COAPFLEET_CA)\n";
      return nullptr;
    }
    uri->credentials.identity = options.identity;
    if (!common::read_key_file(options.key_file, uri->credentials.key, error)) {
      std::cerr << "coapfleet: " << error << "\n";
      return nullptr;
    }
  }
  auto ms = static_cast<long long>(std::llround(options.timeout * 1000.0));
  client_ = std::make_unique<client::blocking_client>(*uri, std::chrono::milliseconds(ms));
  return client_.get();
}

json_answer context::call_raw(client::method m, const std::string& path,
                              const std::string& query, const std::string& body) {
  json_answer out;
  auto* c = client();
  if (!c) {
    out.exit = exit_usage;
    return out;
  }
  auto result = c->request(m, path, query, body, body.empty() ? -1 : 50);
  if (!result.answered()) {
    out.exit = report_no_answer(result.failure);
    return out;
  }
  out.raw = std::move(*result.answer);
  if (!out.raw.success())
    out.exit = report_error(out.raw);
  return out;
}

json_answer context::call(client::method m, const std::string& path, const std::string& query,
                          const std::string& body) {
  auto out = call_raw(m, path, query, body);
  if (!out.ok())
    return out;
  out.doc = model::json_document::parse(out.raw.body);
  if (!out.json().is_object()) {
    std::cerr << "coapfleet: the server's answer to /" << path << " is not a JSON object: "
              << out.raw.body.substr(0, 200) << "\n";
    out.exit = exit_coap_error;
  }
  return out;
}

int context::report_error(const client::response& r) const {
  std::string message;
  auto doc = model::json_document::parse(r.body);
  if (auto answer = doc.root(); answer.is_object()) {
    message = answer["error"].as_string();
    auto field = answer["field"].as_string();
    if (!field.empty())
      message += " (field: " + field + ")";
  } else {
    message = r.body;
  }
  auto name = code_name(r.code);
  std::cerr << "coapfleet: " << r.code_text() << (name.empty() ? "" : " " + name)
            << (message.empty() ? "" : ": " + message) << "\n";
  return exit_coap_error;
}

int context::report_no_answer(const std::string& failure) const {
  std::cerr << "coapfleet: " << failure << "\n";
  return exit_no_answer;
}

void print_raw(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (text.empty() || text.back() != '\n')
    std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::string code_name(uint8_t code) {
  switch (code) {
    case 0x80: return "Bad Request";
    case 0x81: return "Unauthorized";
    case 0x82: return "Bad Option";
    case 0x83: return "Forbidden";
    case 0x84: return "Not Found";
    case 0x85: return "Method Not Allowed";
    case 0x86: return "Not Acceptable";
    case 0x88: return "Request Entity Incomplete";
    case 0x89: return "Conflict";
    case 0x8C: return "Precondition Failed";
    case 0x8D: return "Request Entity Too Large";
    case 0x8F: return "Unsupported Content-Format";
    case 0xA0: return "Internal Server Error";
    case 0xA1: return "Not Implemented";
    case 0xA2: return "Bad Gateway";
    case 0xA3: return "Service Unavailable";
    case 0xA4: return "Gateway Timeout";
    default: return "";
  }
}

}  // namespace coapfleet::cli
