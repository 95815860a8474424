# Included right after project(tapio) via -DCMAKE_PROJECT_tapio_INCLUDE=<this file> (see
# run-cri-pod.sh): defers including e2e/image/targets.cmake to the end of the top-level
# CMakeLists, when the tests' targets (tapio_containerd_fixture, tapio_proto, tapio_test()) exist.
# This keeps the image test out of the normal build without changing the top-level CMakeLists
# (CMake refuses add_subdirectory in deferred calls, hence include()).
# Deferred arguments are expanded when the call runs, so the path is baked in now.
cmake_language(EVAL CODE
  "cmake_language(DEFER CALL include \"${CMAKE_CURRENT_LIST_DIR}/targets.cmake\")")
