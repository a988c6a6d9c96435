# Integration tests: Python 3 (standard library only) scripts that start real
# coapfleet-server processes on loopback and talk to them with libcoap's
# coap-client and a raw CoAP client. Included from tests/CMakeLists.txt, so
# CMAKE_CURRENT_SOURCE_DIR is tests/.
find_package(Python3 COMPONENTS Interpreter REQUIRED)
# Every executable the integration tests drive must exist: a suite is never
# left out quietly.
foreach(target coapfleet-server coapfleet-agent coapfleet coapfleet-sim)
  if(NOT TARGET ${target})
    message(FATAL_ERROR "integration tests need the target ${target}")
  endif()
endforeach()

# name → whether the test binds fixed loopback addresses on port 5683
# (fake agents at 127.0.100.8x / 127.1.0.x); those take the lock
# "loopback_5683" so that they never run beside another test using them.
set(COAPFLEET_INTEGRATION_TESTS
  seed_examples:lock
  jobs:lock
  campaigns:lock
  bad_input:free
  blockwise:free
  interop:free
  observe_endpoint:free
  security:free
  budgets:free
  x509:free
  durability:lock
  liveness_scale:lock
  ports:free)

foreach(entry IN LISTS COAPFLEET_INTEGRATION_TESTS)
  string(REPLACE ":" ";" parts "${entry}")
  list(GET parts 0 name)
  list(GET parts 1 lock)
  add_test(NAME integration_${name}
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_${name}.py)
  set_tests_properties(integration_${name} PROPERTIES
    ENVIRONMENT "COAPFLEET_SERVER_BIN=$<TARGET_FILE:coapfleet-server>;COAPFLEET_AGENT=$<TARGET_FILE:coapfleet-agent>;PYTHONDONTWRITEBYTECODE=1"
    TIMEOUT 600
    LABELS integration)
  if(lock STREQUAL "lock")
    set_tests_properties(integration_${name} PROPERTIES RESOURCE_LOCK loopback_5683)
  endif()
endforeach()

# Agent integration tests: real coapfleet-agent processes on 127.1.0.N:5683
# (test_agent_*.py, and test_dtls.py for its fleet over pre-shared keys; helpers
# in agent_harness.py). They take the lock
# "agents_5683" so that they never run beside each other, and "loopback_5683"
# because they use the same loopback addresses and port as the fake agents above.
set(COAPFLEET_AGENT_INTEGRATION_TESTS
  agent_workflow
  agent_jobs
  agent_restart
  agent_stopping
  agent_lost_answers
  agent_security
  agent_signed_jobs
  agent_x509
  agent_blockwise
  agent_targets
  dtls)
foreach(name IN LISTS COAPFLEET_AGENT_INTEGRATION_TESTS)
  add_test(NAME integration_${name}
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_${name}.py)
  set_tests_properties(integration_${name} PROPERTIES
    ENVIRONMENT "COAPFLEET_SERVER_BIN=$<TARGET_FILE:coapfleet-server>;COAPFLEET_AGENT=$<TARGET_FILE:coapfleet-agent>;COAPFLEET_CLI=$<TARGET_FILE:coapfleet>;PYTHONDONTWRITEBYTECODE=1"
    TIMEOUT 600
    LABELS "integration;agent"
    RESOURCE_LOCK "agents_5683;loopback_5683")
endforeach()

# The operator CLI (coapfleet) against a real server; its fake agent uses a
# free port on a random 127.1.x.y address, so it needs no lock.
add_test(NAME integration_cli
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_cli.py)
set_tests_properties(integration_cli PROPERTIES
  ENVIRONMENT "COAPFLEET_SERVER_BIN=$<TARGET_FILE:coapfleet-server>;COAPFLEET_CLI=$<TARGET_FILE:coapfleet>;PYTHONDONTWRITEBYTECODE=1"
  TIMEOUT 600
  LABELS integration)

# Keys: the offline `coapfleet-server keys` command beside a running server,
# POST/GET /keys with coap-client, the CLI's `key` commands, and the printed
# key as a PSK for libcoap's coap-server-openssl. Free ports only: no lock.
add_test(NAME integration_keys
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_keys.py)
set_tests_properties(integration_keys PROPERTIES
  ENVIRONMENT "COAPFLEET_SERVER_BIN=$<TARGET_FILE:coapfleet-server>;COAPFLEET_CLI=$<TARGET_FILE:coapfleet>;PYTHONDONTWRITEBYTECODE=1"
  TIMEOUT 600
  LABELS integration)

# The audit log: GET /audit over coap:// and coaps://, paging, --audit-keep,
# and `coapfleet audit`. Free ports only: no lock.
add_test(NAME integration_audit
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_audit.py)
set_tests_properties(integration_audit PROPERTIES
  ENVIRONMENT "COAPFLEET_SERVER_BIN=$<TARGET_FILE:coapfleet-server>;COAPFLEET_CLI=$<TARGET_FILE:coapfleet>;PYTHONDONTWRITEBYTECODE=1"
  TIMEOUT 600
  LABELS integration)

# The fleet simulator (coapfleet-sim) against a real server; its nodes listen
# on 127.2.0.x:5683, hence the lock "sim_127_2".
add_test(NAME integration_sim
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_sim.py)
set_tests_properties(integration_sim PROPERTIES
  ENVIRONMENT "COAPFLEET_SERVER_BIN=$<TARGET_FILE:coapfleet-server>;COAPFLEET_SIM=$<TARGET_FILE:coapfleet-sim>;PYTHONDONTWRITEBYTECODE=1"
  TIMEOUT 600
  LABELS integration
  RESOURCE_LOCK sim_127_2)

# A campaign over 10,000 simulated nodes (waves, error threshold, retry and
# resume, late joiners on 127.3.x.y, kill -9 of the server mid-wave). It
# takes both cores for half a minute: alone, so that no other test's timing
# suffers.
add_test(NAME integration_sim_campaign
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_sim_campaign.py)
set_tests_properties(integration_sim_campaign PROPERTIES
  ENVIRONMENT "COAPFLEET_SERVER_BIN=$<TARGET_FILE:coapfleet-server>;COAPFLEET_SIM=$<TARGET_FILE:coapfleet-sim>;PYTHONDONTWRITEBYTECODE=1"
  TIMEOUT 900
  LABELS integration
  RUN_SERIAL TRUE
  RESOURCE_LOCK sim_127_2)

# Observe (RFC 7641) end to end with a raw observer: job status with three
# real agents on 127.1.0.N:5683 (hence the agents' locks), 100 observers of a
# node's health, deletion, discovery, the agent's own /health.
add_test(NAME integration_observe
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_observe.py)
set_tests_properties(integration_observe PROPERTIES
  ENVIRONMENT "COAPFLEET_SERVER_BIN=$<TARGET_FILE:coapfleet-server>;COAPFLEET_AGENT=$<TARGET_FILE:coapfleet-agent>;PYTHONDONTWRITEBYTECODE=1"
  TIMEOUT 600
  LABELS "integration;agent"
  RESOURCE_LOCK "agents_5683;loopback_5683")

# GET /nodes in pages on 2,345 nodes registered by coapfleet-sim (nodes on
# 127.12.x.y:5683, an address range of its own), read with coap-client and the CLI.
add_test(NAME integration_pages
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_pages.py)
set_tests_properties(integration_pages PROPERTIES
  ENVIRONMENT "COAPFLEET_SERVER_BIN=$<TARGET_FILE:coapfleet-server>;COAPFLEET_SIM=$<TARGET_FILE:coapfleet-sim>;COAPFLEET_CLI=$<TARGET_FILE:coapfleet>;PYTHONDONTWRITEBYTECODE=1"
  TIMEOUT 600
  LABELS integration)

# The same control-plane tests with the store in PostgreSQL (a throwaway
# server per test, tests/with_pg.sh; each server in a schema of its own):
# the wire contract, jobs and campaigns, durability across kill -9, real
# agents, keys and the CLI do not depend on the engine.
set(COAPFLEET_POSTGRESQL_INTEGRATION_TESTS
  seed_examples:loopback_5683
  jobs:loopback_5683
  campaigns:loopback_5683
  durability:loopback_5683
  agent_workflow:agents_5683,loopback_5683
  keys:none
  cli:none)
foreach(entry IN LISTS COAPFLEET_POSTGRESQL_INTEGRATION_TESTS)
  string(FIND "${entry}" ":" colon)
  string(SUBSTRING "${entry}" 0 ${colon} name)
  math(EXPR rest "${colon} + 1")
  string(SUBSTRING "${entry}" ${rest} -1 locks)
  string(REPLACE "," ";" locks "${locks}")
  add_test(NAME postgresql_integration_${name}
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/with_pg.sh ${Python3_EXECUTABLE}
            ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_${name}.py)
  set_tests_properties(postgresql_integration_${name} PROPERTIES
    ENVIRONMENT "COAPFLEET_SERVER_BIN=$<TARGET_FILE:coapfleet-server>;COAPFLEET_AGENT=$<TARGET_FILE:coapfleet-agent>;COAPFLEET_CLI=$<TARGET_FILE:coapfleet>;PYTHONDONTWRITEBYTECODE=1"
    TIMEOUT 600
    LABELS "integration;postgresql")
  if(NOT locks STREQUAL "none")
    set_tests_properties(postgresql_integration_${name} PROPERTIES RESOURCE_LOCK "${locks}")
  endif()
endforeach()

# Clustered main servers: three members on free ports of 127.0.0.1 sharing a
# throwaway PostgreSQL; kill -9 of a member, a member cut off from the store
# by a proxy that holds its traffic. Free ports only: no lock.
add_test(NAME integration_cluster
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/with_pg.sh ${Python3_EXECUTABLE}
          ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_cluster.py)
set_tests_properties(integration_cluster PROPERTIES
  ENVIRONMENT "COAPFLEET_SERVER_BIN=$<TARGET_FILE:coapfleet-server>;COAPFLEET_CLI=$<TARGET_FILE:coapfleet>;COAPFLEET_AGENT=$<TARGET_FILE:coapfleet-agent>;COAPFLEET_SIM=$<TARGET_FILE:coapfleet-sim>;PYTHONDONTWRITEBYTECODE=1"
  TIMEOUT 600
  LABELS "integration;postgresql;cluster"
  RESOURCE_LOCK sim_127_14)

# Artifacts in the shared store: uploaded through one member, served by
# the others, installed after the member that took the upload is killed.
add_test(NAME integration_cluster_artifacts
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/with_pg.sh ${Python3_EXECUTABLE}
          ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_cluster_artifacts.py)
set_tests_properties(integration_cluster_artifacts PROPERTIES
  ENVIRONMENT "COAPFLEET_SERVER_BIN=$<TARGET_FILE:coapfleet-server>;COAPFLEET_AGENT=$<TARGET_FILE:coapfleet-agent>;PYTHONDONTWRITEBYTECODE=1"
  TIMEOUT 300
  LABELS "integration;postgresql;cluster")

# A campaign over 1,000 simulated nodes survives kill -9 of the member that
# runs it (its nodes fail over, a survivor takes the campaign over).
add_test(NAME integration_cluster_campaign
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/with_pg.sh ${Python3_EXECUTABLE}
          ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_cluster_campaign.py)
set_tests_properties(integration_cluster_campaign PROPERTIES
  ENVIRONMENT "COAPFLEET_SERVER_BIN=$<TARGET_FILE:coapfleet-server>;COAPFLEET_CLI=$<TARGET_FILE:coapfleet>;COAPFLEET_SIM=$<TARGET_FILE:coapfleet-sim>;PYTHONDONTWRITEBYTECODE=1"
  TIMEOUT 900
  LABELS "integration;postgresql;cluster"
  RESOURCE_LOCK sim_127_14)

# A test script without a test above would never run.
file(GLOB COAPFLEET_INTEGRATION_SCRIPTS CONFIGURE_DEPENDS
  RELATIVE ${CMAKE_CURRENT_SOURCE_DIR}/integration ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_*.py)
foreach(script IN LISTS COAPFLEET_INTEGRATION_SCRIPTS)
  string(REGEX REPLACE "^test_(.*)\\.py$" "integration_\\1" name "${script}")
  if(NOT TEST ${name})
    message(FATAL_ERROR "tests/integration/${script} is not registered as a test (${name})")
  endif()
endforeach()
# ... and a test whose script was deleted is a configure error, not a test
# that fails late.
get_property(COAPFLEET_REGISTERED_TESTS DIRECTORY PROPERTY TESTS)
foreach(test IN LISTS COAPFLEET_REGISTERED_TESTS)
  if(test MATCHES "^integration_(.*)$")
    set(script "tests/integration/test_${CMAKE_MATCH_1}.py")
    if(NOT EXISTS "${CMAKE_SOURCE_DIR}/${script}")
      message(FATAL_ERROR "${test} runs ${script}, which is missing")
    endif()
  endif()
endforeach()

