# Include isolation between the parts of the build (see CMakeLists.txt).
#
# coapfleet_expose(target dir): `dir` (relative to the source root, e.g.
# "actors/server") becomes visible as "<dir>/..." to the target and to every
# target that links it, through a symbolic link in
# ${CMAKE_BINARY_DIR}/parts/<target>/<dir>. Nothing else of the source tree is.
function(coapfleet_expose target dir)
  set(stage "${CMAKE_BINARY_DIR}/parts/${target}")
  get_filename_component(parent "${stage}/${dir}" DIRECTORY)
  file(MAKE_DIRECTORY "${parent}")
  if(NOT EXISTS "${stage}/${dir}")
    file(CREATE_LINK "${CMAKE_SOURCE_DIR}/${dir}" "${stage}/${dir}" SYMBOLIC)
  endif()
  target_include_directories(${target} PUBLIC "${stage}")
endfunction()

# coapfleet_expose_files(target file...): single headers, the same way.
function(coapfleet_expose_files target)
  set(stage "${CMAKE_BINARY_DIR}/parts/${target}")
  foreach(f IN LISTS ARGN)
    get_filename_component(parent "${stage}/${f}" DIRECTORY)
    file(MAKE_DIRECTORY "${parent}")
    if(NOT EXISTS "${stage}/${f}")
      file(CREATE_LINK "${CMAKE_SOURCE_DIR}/${f}" "${stage}/${f}" SYMBOLIC)
    endif()
  endforeach()
  target_include_directories(${target} PUBLIC "${stage}")
endfunction()

# The rules the include paths cannot enforce (libcoap, RapidJSON and SQLite
# live in the system's include directory): checked on every build.
add_custom_target(layering
  COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${CMAKE_SOURCE_DIR}
          -P ${CMAKE_SOURCE_DIR}/cmake/check_layering.cmake
  COMMENT "Checking the layering rules (libcoap, RapidJSON, SQLite, interfaces.hpp)"
  VERBATIM)
