// What every fuzz target shares: reading structured values from libFuzzer's
// bytes (a choice, a number, a length-prefixed string), and the check that
// turns a broken invariant into a crash libFuzzer keeps (assert vanishes in
// a release build; this never does).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace coapfleet::fuzz {

[[noreturn]] inline void broken(const char* what, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
  std::abort();
}

#define FUZZ_CHECK(cond)                                   \
  do {                                                     \
    if (!(cond))                                           \
      ::coapfleet::fuzz::broken(#cond, __FILE__, __LINE__); \
  } while (false)

/// False while `defect` (a known bug in a file this target cannot fix, named
/// in README.md's Fuzzing section) is open: the target then steps around it
/// instead of stopping on it every run. COAPFLEET_FUZZ_KNOWN_DEFECTS=1 in
/// the environment checks them too, to see whether they are fixed:
///   COAPFLEET_FUZZ_KNOWN_DEFECTS=1 build-fuzz/fuzz/fuzz_json fuzz/regressions/json/*
inline bool check_known_defect(const char* defect) {
  (void)defect;  // its name is for the reader and for grep
  static const bool check = std::getenv("COAPFLEET_FUZZ_KNOWN_DEFECTS") != nullptr;
  return check;
}

/// The input as a stream: every read past the end gives zeros or an empty
/// string, so a short input is simply a short sequence of choices.
class input {
public:
  input(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}

  bool empty() const { return p_ == end_; }
  uint8_t byte() { return p_ == end_ ? 0 : *p_++; }
  uint16_t u16() { return static_cast<uint16_t>(byte() << 8 | byte()); }
  uint32_t u32() { return static_cast<uint32_t>(u16()) << 16 | u16(); }
  /// A string of up to `max` bytes, its length in the first byte (modulo max+1).
  std::string_view text(size_t max = 255) {
    size_t n = byte() % (max + 1);
    return take(n);
  }
  /// The next `n` bytes (fewer at the end).
  std::string_view take(size_t n) {
    size_t left = static_cast<size_t>(end_ - p_);
    if (n > left)
      n = left;
    std::string_view s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }
  /// Whatever is left.
  std::string_view rest() { return take(static_cast<size_t>(end_ - p_)); }

private:
  const uint8_t* p_;
  const uint8_t* end_;
};

}  // namespace coapfleet::fuzz
