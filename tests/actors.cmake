# The server's actor tests: one file per actor (or per concern of one actor),
# all on CAF's test_coordinator, sharing unit/actor_fixture.hpp. Listed one by
# one: a file that goes missing is a build error, not a test that stops running.
add_executable(actor_tests
  unit/actors_main.cpp
  unit/registry_test.cpp
  unit/registry_cluster_test.cpp
  unit/node_test.cpp
  unit/persistence_test.cpp
  unit/job_test.cpp unit/job_targets_test.cpp
  unit/job_commit_test.cpp
  unit/supervision_test.cpp
  unit/artifact_store_test.cpp unit/artifact_store_shared_test.cpp
  unit/system_test.cpp
  unit/gateway_test.cpp
  unit/gateway_keys_test.cpp
  unit/gateway_audit_test.cpp
  unit/keys_test.cpp
  unit/shedding_test.cpp
  unit/cidr_test.cpp unit/resource_path_test.cpp
  unit/budget_test.cpp
  unit/block1_test.cpp
  unit/certificate_files_test.cpp
  unit/listen_port_test.cpp
  unit/shutdown_watch_test.cpp)
target_link_libraries(actor_tests PRIVATE coapfleet_server coapfleet_store coapfleet_transport
  doctest::doctest OpenSSL::Crypto)
add_test(NAME actor_tests COMMAND actor_tests)
