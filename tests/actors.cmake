add_executable(actor_tests unit/actors_main.cpp unit/actors_test.cpp unit/shedding_test.cpp
  unit/job_commit_test.cpp unit/supervision_test.cpp)
target_link_libraries(actor_tests PRIVATE coapfleet_server coapfleet_store coapfleet_transport
  SQLite::SQLite3 doctest::doctest)
add_test(NAME actor_tests COMMAND actor_tests)
