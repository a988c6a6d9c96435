// Random bytes from the kernel's CSPRNG (getrandom(2)): the only source of
// secrets in the project (pre-shared keys).
#pragma once

#include <cstddef>
#include <string>

namespace coapfleet::common {

/// Fills `out` with `n` bytes from getrandom(2) (blocking until the pool is
/// initialised, retrying short reads and EINTR). False when the kernel gives
/// none (no getrandom(2)); then `out` must not be used.
bool random_bytes(void* out, size_t n);

/// `bytes` random bytes as 2*bytes lower-case hex digits; "" when the kernel
/// gives no random bytes.
std::string random_hex(size_t bytes);

}  // namespace coapfleet::common
