# The agent's unit and actor tests, one file per actor or part; listed, so
# that a deleted file is a build error rather than a suite that silently
# stops running.
add_executable(agent_tests unit/agent_main.cpp
  unit/agent_gateway_test.cpp
  unit/agent_handlers_test.cpp
  unit/agent_install_root_test.cpp
  unit/agent_installer_test.cpp unit/agent_inventory_test.cpp unit/agent_health_check_test.cpp
  unit/agent_signed_jobs_test.cpp
  unit/agent_metrics_test.cpp
  unit/agent_reporter_test.cpp
  unit/agent_server_list_test.cpp
  unit/agent_sampler_test.cpp)
target_link_libraries(agent_tests PRIVATE coapfleet_agent doctest::doctest)
add_test(NAME agent_tests COMMAND agent_tests)
