#include "actors/agent/journal.hpp"

#include "model/json.hpp"
#include "model/targets.hpp"

#include "common/durable_file.hpp"

namespace coapfleet::agent {

job_journal load_journal(const std::string& path, std::string& error) {
  job_journal j;
  std::string text;
  if (!common::read_file(path, text))
    return j;
  std::string warning;
  if (!model::decode_journal(text, j, warning)) {
    error = path + " is damaged; starting with an empty journal";
    return job_journal{};
  }
  if (!warning.empty())
    error = path + ": " + warning;
  return j;
}

bool save_journal(const std::string& path, const job_journal& j, std::string& error) {
  return common::write_file_atomically(path, model::encode_journal(j), error, 0600);
}

std::deque<model::update_report> load_outbox(const std::string& path, std::string& error) {
  std::deque<model::update_report> out;
  std::string text;
  if (!common::read_file(path, text))
    return out;
  if (!model::decode_outbox(text, out))
    error = path + " is damaged; starting with an empty outbox";
  return out;
}

bool save_outbox(const std::string& path, const std::deque<model::update_report>& outbox,
                 std::string& error) {
  return common::write_file_atomically(path, model::encode_outbox(outbox), error, 0600);
}

model::string_map load_inventory(const std::string& path, std::string& error) {
  std::string text;
  if (!common::read_file(path, text))
    return {};
  auto d = model::decode_string_map(text);
  if (!d.ok()) {
    error = path + " is damaged (" + d.err.error + "); starting with an empty inventory";
    return {};
  }
  // What the server would refuse is left out (the rest still counts).
  model::string_map out;
  for (auto& e : d.value)
    if (model::valid_inventory_name(e.first) && model::valid_version(e.second))
      out.push_back(e);
  if (out.size() > model::max_inventory)
    out.resize(model::max_inventory);
  return out;
}

bool save_inventory(const std::string& path, const model::string_map& inventory,
                    std::string& error) {
  return common::write_file_atomically(path, model::encode_string_map(inventory), error, 0600);
}

}  // namespace coapfleet::agent
