# Unit tests of the fleet simulator (sim/): the CoAP codec against byte vectors
# from RFC 7252 and coap-client, configuration, bodies, statistics, and the
# engine against an in-process fake server on loopback (127.3.x.y, ephemeral
# ports). Included from tests/CMakeLists.txt.
# Listed, so that a deleted file is a build error.
add_executable(sim_tests unit/sim_main_test.cpp unit/sim_codec_test.cpp unit/sim_config_test.cpp
  unit/sim_bodies_test.cpp unit/sim_engine_test.cpp)
target_link_libraries(sim_tests PRIVATE coapfleet_sim doctest::doctest Threads::Threads)
add_test(NAME sim_tests COMMAND sim_tests)
set_tests_properties(sim_tests PROPERTIES TIMEOUT 120 LABELS unit)
