# Fails when a source file breaks one of DESIGN.md's layering rules:
#   - libcoap (headers, calls, types) only in transport/;
#   - RapidJSON only in model/ (and the model's own tests), and there only in
#     the .cpp files and the internal helpers json_read.hpp / json_write.hpp;
#   - SQLite only in store/ (and the store's own tests);
#   - actors/interfaces.hpp includes only CAF, model/ and common/;
#   - actor parts do not include each other (server <-> agent) or the transport.
# Run as: cmake -DSOURCE_DIR=<root> -P check_layering.cmake
cmake_policy(SET CMP0009 NEW)  # do not follow symbolic links
set(sources "")
foreach(dir model common store actors transport main sim tests)
  file(GLOB_RECURSE found RELATIVE "${SOURCE_DIR}"
    "${SOURCE_DIR}/${dir}/*.cpp" "${SOURCE_DIR}/${dir}/*.hpp" "${SOURCE_DIR}/${dir}/*.h")
  list(APPEND sources ${found})
endforeach()
set(violations "")
foreach(f IN LISTS sources)
  file(READ "${SOURCE_DIR}/${f}" text)
  if(NOT f MATCHES "^transport/")
    if(text MATCHES "#include[ \t]*<coap3/" OR text MATCHES "[^A-Za-z0-9_]coap_[a-z0-9_]+(\\(|_t[^A-Za-z0-9_])")
      list(APPEND violations "${f}: libcoap outside transport/")
    endif()
  endif()
  if(NOT f MATCHES "^model/" AND NOT f MATCHES "^tests/unit/model_")
    if(text MATCHES "rapidjson")
      list(APPEND violations "${f}: RapidJSON outside model/")
    endif()
  endif()
  # model/'s own headers hide RapidJSON, but for its internal helpers, which
  # only model/*.cpp (and the model's tests) include.
  if(f MATCHES "^model/.*\\.hpp$" AND NOT f MATCHES "^model/json_(read|write)\\.hpp$"
     AND text MATCHES "rapidjson")
    list(APPEND violations "${f}: RapidJSON in a model/ header that is not internal")
  endif()
  if(NOT f MATCHES "^model/[^/]*\\.cpp$" AND NOT f MATCHES "^tests/unit/model_"
     AND text MATCHES "#include[ \t]*\"model/json_(read|write)\\.hpp\"")
    list(APPEND violations "${f}: includes model/'s internal RapidJSON helpers")
  endif()
  # (store::write_lock is how other tests hold the database's lock.)
  if(NOT f MATCHES "^store/" AND NOT f MATCHES "^tests/unit/store_")
    if(text MATCHES "sqlite3")
      list(APPEND violations "${f}: SQLite outside store/")
    endif()
    if(text MATCHES "libpq-fe")
      list(APPEND violations "${f}: libpq outside store/")
    endif()
  endif()
  if(f MATCHES "^actors/agent/" AND text MATCHES "#include[ \t]*\"(actors/server/|store/|transport/)")
    list(APPEND violations "${f}: an agent actor includes the server, the store or the transport")
  endif()
  if(f MATCHES "^actors/server/" AND text MATCHES "#include[ \t]*\"(actors/agent/|transport/)")
    list(APPEND violations "${f}: a server actor includes the agent or the transport")
  endif()
  if(f MATCHES "^(model|common)/" AND text MATCHES "#include[ \t]*\"(actors|transport|store|sim|main)/")
    list(APPEND violations "${f}: model/ and common/ include only model/ and common/")
  endif()
  if(f MATCHES "^model/" AND text MATCHES "#include[ \t]*[<\"](caf/|coap3/|sqlite3|common/)")
    list(APPEND violations "${f}: model/ is pure (no CAF, libcoap, SQLite or I/O helpers)")
  endif()
endforeach()
file(STRINGS "${SOURCE_DIR}/actors/interfaces.hpp" includes REGEX "^#include")
foreach(line IN LISTS includes)
  if(NOT line MATCHES "^#include[ \t]*(<caf/|<[a-z_]+>|\"model/|\"common/)")
    list(APPEND violations "actors/interfaces.hpp: ${line} (only CAF, the standard library, model/ and common/)")
  endif()
endforeach()
if(violations)
  list(JOIN violations "\n  " text)
  message(FATAL_ERROR "layering rules broken:\n  ${text}")
endif()
