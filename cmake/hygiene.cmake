# Build options for catching mistakes early; included from the top-level
# CMakeLists.txt before any target is defined, so they apply to every target.
#
#   COAPFLEET_SANITIZE  AddressSanitizer + UndefinedBehaviorSanitizer (compile and
#                       link); any undefined behaviour aborts the program.
#   COAPFLEET_WERROR    compiler warnings are errors (CI builds with it).
#   COAPFLEET_FUZZ      libFuzzer targets (fuzz/, clang++ only): every object is
#                       built with -fsanitize=fuzzer-no-link,address,undefined,
#                       the targets link -fsanitize=fuzzer (deploy/fuzz.sh).

option(COAPFLEET_SANITIZE "Build with -fsanitize=address,undefined" OFF)
option(COAPFLEET_WERROR "Treat compiler warnings as errors" OFF)
option(COAPFLEET_FUZZ "Build the libFuzzer targets under fuzz/ (clang++)" OFF)

if(COAPFLEET_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "COAPFLEET_FUZZ needs clang++ (-DCMAKE_CXX_COMPILER=clang++), "
                        "not ${CMAKE_CXX_COMPILER_ID}")
  endif()
  if(COAPFLEET_SANITIZE)
    message(FATAL_ERROR "COAPFLEET_FUZZ already builds with ASan and UBSan; leave "
                        "COAPFLEET_SANITIZE off")
  endif()
  # Every object gets the coverage instrumentation and the sanitizers; only
  # the targets themselves link libFuzzer's main (fuzz/CMakeLists.txt). Any
  # undefined behaviour aborts, so that libFuzzer reports it as a crash.
  # -O1 after the build type's flags: several times the executions per
  # second of -O0, and stack traces still read well. pointer-overflow stays
  # recoverable only so that fuzz/ubsan.supp can name a system header's
  # report; the targets still halt on any other (fuzz/ubsan_options.cpp).
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined
                      -fno-sanitize-recover=undefined -fsanitize-recover=pointer-overflow
                      -fno-omit-frame-pointer -O1)
  add_link_options(-fsanitize=address,undefined)
endif()

if(COAPFLEET_SANITIZE)
  # -fno-sanitize=null: CAF 0.17's init_fun_factory (a header, so compiled
  # here) binds a reference through the empty shared_ptr<std::tuple<>> it
  # keeps for an actor spawned without arguments, and UBSan's null check
  # stops there, in every test that spawns such an actor. The reference is
  # never read; a real null dereference still faults, and ASan reports it.
  add_compile_options(-fsanitize=address,undefined -fno-sanitize=null -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

if(COAPFLEET_WERROR)
  add_compile_options(-Werror)
endif()
