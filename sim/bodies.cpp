#include "sim/bodies.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "model/json.hpp"

namespace coapfleet::sim {

namespace {
uint64_t splitmix(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
double clamp(double v, double lo, double hi) { return std::min(hi, std::max(lo, v)); }
}  // namespace

rng::rng(uint64_t seed) {
  for (auto& s : s_)
    s = splitmix(seed);
}

uint64_t rng::next() {
  uint64_t result = rotl(s_[1] * 5, 7) * 9;
  uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

void health_walk::init(rng& r) {
  cpu = r.uniform(3, 40);
  memory = r.uniform(20, 70);
  disk = r.uniform(10, 80);
  temperature = r.uniform(35, 60);
  uptime = r.uniform(60, 30 * 86400.0);
  unhealthy = false;
}

void health_walk::step(rng& r, double dt, double unhealthy_rate) {
  cpu = clamp(cpu + r.uniform(-8, 8) + (20 - cpu) * 0.05, 0.5, 100);
  memory = clamp(memory + r.uniform(-2, 2) + (50 - memory) * 0.02, 5, 99);
  disk = clamp(disk + r.uniform(-0.05, 0.08), 1, 99.5);
  temperature = clamp(temperature + r.uniform(-1.5, 1.5) + (cpu - 20) * 0.01, 25, 90);
  uptime += std::max(0.0, dt);
  unhealthy = r.chance(unhealthy_rate);
}

size_t format_health(char* buf, size_t capacity, const std::string& node_id,
                     const health_walk& h, const std::vector<std::string>& services,
                     const char* timestamp) {
  size_t len = 0;
  auto add = [&](const char* fmt, auto... args) {
    if (len >= capacity)
      return;
    int n = std::snprintf(buf + len, capacity - len, fmt, args...);
    len = n < 0 ? capacity : len + static_cast<size_t>(n);
  };
  add("{\"node_id\":\"%s\",", node_id.c_str());
  if (timestamp && *timestamp)
    add("\"timestamp\":\"%s\",", timestamp);
  add("\"overall_healthy\":%s,\"cpu_percent\":%.1f,\"memory_percent\":%.1f,"
      "\"disk_percent\":%.1f,\"temperature\":%.1f,\"uptime_seconds\":%.0f,"
      "\"services_status\":{",
      h.unhealthy ? "false" : "true", h.cpu, h.memory, h.disk, h.temperature, h.uptime);
  // The unhealthy one is docker when the node runs it, else the last service.
  size_t down = services.size();
  if (h.unhealthy && !services.empty()) {
    down = services.size() - 1;
    for (size_t i = 0; i < services.size(); ++i)
      if (services[i] == "docker")
        down = i;
  }
  for (size_t i = 0; i < services.size(); ++i)
    add("%s\"%s\":%s", i ? "," : "", services[i].c_str(), i == down ? "false" : "true");
  add("},\"error_messages\":[");
  if (down < services.size())
    add("\"Service %s is not running\"", services[down].c_str());
  add("]}");
  if (len >= capacity)
    return 0;
  return len;
}

std::string iso_time(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string registration_body(const std::string& node_id, const std::string& ip, uint16_t port,
                              const std::vector<std::string>& services, uint32_t index,
                              const model::string_map& labels,
                              const model::string_map* inventory) {
  model::node_registration r;
  r.labels = labels;
  if (inventory) {
    r.inventory = *inventory;
    r.inventory_given = true;
  }
  r.node_id = node_id;
  r.hostname = node_id;
  r.ip_address = ip;
  r.port = port;
  r.services = services;
  static const char* driver_sets[][3] = {{"gpio", "i2c", "spi"}, {"gpio", "uart", nullptr},
                                         {"i2c", nullptr, nullptr}};
  for (auto* d : driver_sets[index % 3])
    if (d)
      r.drivers.emplace_back(d);
  static const char* arches[] = {"arm64", "armv7l", "x86_64"};
  r.system_info = {{"os", model::scalar::of(std::string("linux"))},
                   {"arch", model::scalar::of(std::string(arches[index % 3]))},
                   {"kernel", model::scalar::of(std::string("6.1.0-sim"))},
                   {"simulated", model::scalar::of_bool(true)}};
  return model::encode_node_registration(r);
}

std::string report_body(const std::string& job_id, const std::string& node_id,
                        model::node_update_state state, int progress, int result,
                        const std::string& error_message, const model::string_map* inventory,
                        uint32_t attempt) {
  model::update_report r;
  r.attempt = attempt;
  if (inventory) {
    r.inventory = *inventory;
    r.inventory_given = true;
  }
  r.job_id = job_id;
  r.node_id = node_id;
  r.state = state;
  r.progress = progress;
  r.result = result;
  r.error_message = error_message;
  return model::encode_update_report(r);
}

}  // namespace coapfleet::sim
