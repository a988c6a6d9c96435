// artifact upload|list: the server's artifact store (files that `file` jobs
// install). Uploads go block by block so a terminal shows their progress, and
// the server's SHA-256 must equal the local file's.
#include "main/cli/commands.hpp"
#include "main/cli/output.hpp"
#include "main/cli/time_text.hpp"
#include "common/sha256.hpp"
#include "model/json_value.hpp"


#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>

namespace coapfleet::cli {

namespace {

constexpr size_t upload_block_size = 1024;


std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

/// Redraws "uploading NAME [####....]  45%  0.9 MiB / 2.0 MiB" at most every
/// 100 ms (and at the end).
class upload_bar {
public:
  upload_bar(const terminal& term, std::string name) : term_(term), name_(std::move(name)) {}

  void operator()(size_t done, size_t total) {
    if (!term_.colours)
      return;
    auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(100))
      return;
    last_ = now;
    double fraction = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
    char pct[16];
    std::snprintf(pct, sizeof(pct), "%3.0f%%", fraction * 100);
    std::string text = "uploading " + name_ + " " + bar(fraction, 30) + " " + pct + "  "
                       + human_bytes(static_cast<double>(done)) + " / "
                       + human_bytes(static_cast<double>(total));
    auto width = static_cast<size_t>(term_.width() - 1);
    if (display_width(text) > width)
      text = text.substr(0, width);
    std::printf("\r\033[K%s", text.c_str());
    std::fflush(stdout);
    shown_ = true;
  }

  void clear() {
    if (shown_) {
      std::fputs("\r\033[K", stdout);
      std::fflush(stdout);
      shown_ = false;
    }
  }

private:
  const terminal& term_;
  std::string name_;
  std::chrono::steady_clock::time_point last_{};
  bool shown_ = false;
};

int upload(context& ctx, const std::string& file, std::string name) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::cerr << "coapfleet: cannot read " << file << "\n";
    return exit_usage;
  }
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    std::cerr << "coapfleet: cannot read " << file << "\n";
    return exit_usage;
  }
  if (name.empty())
    name = file.substr(file.find_last_of('/') + 1);
  auto* client = ctx.client();
  if (!client)
    return exit_usage;
  auto local_sha = common::sha256_hex(data);
  auto term = terminal::detect();
  upload_bar progress(term, name);
  auto result = client->upload("artifacts/" + name, data, upload_block_size,
                               [&](size_t done, size_t total) { progress(done, total); });
  progress.clear();
  if (!result.answered())
    return ctx.report_no_answer(result.failure);
  auto& r = *result.answer;
  if (!r.success())
    return ctx.report_error(r);
  auto doc = model::json_document::parse(r.body);
  auto answer = doc.root();
  if (!answer.is_object()) {
    std::cerr << "coapfleet: the server's answer to the upload is not JSON: " << r.body << "\n";
    return exit_coap_error;
  }
  auto server_sha = lower(answer["sha256"].as_string());
  auto size = answer["size"].as_int();
  if (server_sha != local_sha || size != static_cast<long long>(data.size())) {
    std::cerr << "coapfleet: upload of " << file << " did not check out: the server stored "
              << size << " bytes with sha256 " << (server_sha.empty() ? "?" : server_sha)
              << ", the local file has " << data.size() << " bytes with sha256 " << local_sha
              << "\n";
    return exit_coap_error;
  }
  if (ctx.options.json) {
    print_raw(r.body);
    return exit_ok;
  }
  std::printf("uploaded %s: %lld bytes (%s), sha256 %s (matches the local file)\n",
              answer["name"].as_string().c_str(), size,
              human_bytes(static_cast<double>(size)).c_str(), server_sha.c_str());
  return exit_ok;
}

int list(context& ctx) {
  auto a = ctx.call(client::method::get, "artifacts");
  if (!a.ok())
    return a.exit;
  if (ctx.options.json) {
    print_raw(a.raw.body);
    return exit_ok;
  }
  table t({"NAME", "SIZE", "SHA256", "UPLOADED"});
  for (model::json_value i : a.json()["artifacts"].elements())
    t.add({i["name"].as_string(), std::to_string(i["size"].as_int()), i["sha256"].as_string(),
           relative_time(i["uploaded_at"].as_string())});
  if (t.empty()) {
    std::printf("no artifacts\n");
    return exit_ok;
  }
  t.print(terminal::detect());
  return exit_ok;
}

}  // namespace

void add_artifact_commands(CLI::App& app, context& ctx) {
  auto* artifact = app.add_subcommand("artifact", "The server's artifact store");
  artifact->require_subcommand(1);

  struct upload_args {
    std::string file, name;
  };
  auto args = std::make_shared<upload_args>();
  auto* up = artifact->add_subcommand(
    "upload", "Upload a file block-wise; verifies the stored SHA-256 (exit 3 if it differs)");
  up->add_option("file", args->file, "The file to upload")->required()->check(CLI::ExistingFile);
  up->add_option("--name", args->name, "Name in the store (default: the file's name)");
  up->callback([&ctx, args] {
    ctx.action = [&ctx, args] { return upload(ctx, args->file, args->name); };
  });

  auto* ls = artifact->add_subcommand("list", "Stored artifacts with size and SHA-256");
  ls->callback([&ctx] { ctx.action = [&ctx] { return list(ctx); }; });
}

}  // namespace coapfleet::cli
