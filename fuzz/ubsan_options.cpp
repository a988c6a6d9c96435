// UBSan's defaults for every fuzz target, so that a target run by hand
// behaves as under deploy/fuzz.sh: stop on the first report (the fuzz build
// makes only pointer-overflow recoverable, for the suppressions) and read
// fuzz/ubsan.supp. UBSAN_OPTIONS from the environment still wins.
extern "C" const char* __ubsan_default_options() {
  return "halt_on_error=1:print_stacktrace=1:suppressions=" COAPFLEET_UBSAN_SUPPRESSIONS;
}
