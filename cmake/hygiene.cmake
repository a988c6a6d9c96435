# Build options for catching mistakes early; included from the top-level
# CMakeLists.txt before any target is defined, so they apply to every target.
#
#   COAPFLEET_SANITIZE  AddressSanitizer + UndefinedBehaviorSanitizer (compile and
#                       link); any undefined behaviour aborts the program.
#   COAPFLEET_WERROR    compiler warnings are errors (CI builds with it).

option(COAPFLEET_SANITIZE "Build with -fsanitize=address,undefined" OFF)
option(COAPFLEET_WERROR "Treat compiler warnings as errors" OFF)

if(COAPFLEET_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

if(COAPFLEET_WERROR)
  add_compile_options(-Werror)
endif()
