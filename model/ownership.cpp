#include "model/ownership.hpp"

namespace coapfleet::model {

namespace {

uint64_t fnv1a(uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

uint64_t rendezvous_score(std::string_view member_id, std::string_view node_id) {
  uint64_t h = fnv1a(0xcbf29ce484222325ULL, member_id);
  h = fnv1a(h ^ 0xff, "\x1f");  // a separator no id contains: ("ab","c") != ("a","bc")
  return mix(fnv1a(h, node_id));
}

std::string owner_of(std::string_view node_id, const std::vector<std::string>& members) {
  const std::string* best = nullptr;
  uint64_t best_score = 0;
  for (auto& m : members) {
    auto score = rendezvous_score(m, node_id);
    if (!best || score > best_score || (score == best_score && m < *best)) {
      best = &m;
      best_score = score;
    }
  }
  return best ? *best : std::string{};
}

}  // namespace coapfleet::model
