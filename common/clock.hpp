// Wall-clock time in the model's unit (milliseconds since the epoch).
#pragma once

#include <chrono>

#include "model/types.hpp"

namespace coapfleet {

inline model::millis now_millis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace coapfleet
