# Build options for catching mistakes early; included from the top-level
# CMakeLists.txt before any target is defined, so they apply to every target.
#
#   COAPFLEET_SANITIZE  AddressSanitizer + UndefinedBehaviorSanitizer (compile and
#                       link); any undefined behaviour aborts the program.
#   COAPFLEET_WERROR    compiler warnings are errors (CI builds with it).

option(COAPFLEET_SANITIZE "Build with -fsanitize=address,undefined" OFF)
option(COAPFLEET_WERROR "Treat compiler warnings as errors" OFF)

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
