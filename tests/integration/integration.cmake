# Integration tests: Python 3 (standard library only) scripts that start real
# coapfleet-server processes on loopback and talk to them with libcoap's
# coap-client and a raw CoAP client. Included from tests/CMakeLists.txt, so
# CMAKE_CURRENT_SOURCE_DIR is tests/.
find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_Interpreter_FOUND)
  message(STATUS "integration tests disabled: no python3")
  return()
endif()

# name → whether the test binds fixed loopback addresses on port 5683
# (fake agents at 127.0.100.8x / 127.1.0.x); those take the lock
# "loopback_5683" so that they never run beside another test using them.
set(COAPFLEET_INTEGRATION_TESTS
  seed_examples:lock
  jobs:lock
  bad_input:free
  durability:lock
  liveness_scale:lock)

foreach(entry IN LISTS COAPFLEET_INTEGRATION_TESTS)
  string(REPLACE ":" ";" parts "${entry}")
  list(GET parts 0 name)
  list(GET parts 1 lock)
  add_test(NAME integration_${name}
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_${name}.py)
  set_tests_properties(integration_${name} PROPERTIES
    ENVIRONMENT "COAPFLEET_SERVER=$<TARGET_FILE:coapfleet-server>;PYTHONDONTWRITEBYTECODE=1"
    TIMEOUT 600
    LABELS integration)
  if(lock STREQUAL "lock")
    set_tests_properties(integration_${name} PROPERTIES RESOURCE_LOCK loopback_5683)
  endif()
endforeach()
