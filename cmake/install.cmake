# `cmake --install <build> [--prefix DIR]` puts the executables in DIR/bin.
# Included from the top-level CMakeLists.txt after the executables are defined.
include(GNUInstallDirs)

install(TARGETS coapfleet-server coapfleet-agent coapfleet coapfleet-sim
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
