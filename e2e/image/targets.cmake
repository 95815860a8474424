# The agent image run as a CRI pod (cri_pod_test.cc). Not part of the default tree: included at
# the end of the top-level CMakeLists only by e2e/image/include.cmake (run-cri-pod.sh passes it).
# LABEL image: never run by `make test` (it needs an image built by e2e/image/build.sh first).
if(NOT TARGET tapio_containerd_fixture OR NOT TARGET tapio_proto OR NOT COMMAND tapio_test)
  message(FATAL_ERROR "e2e/image needs TAPIO_BUILD_TESTS, TAPIO_WITH_ATTRIB and TAPIO_WITH_API")
endif()
tapio_test(image_cri_pod_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/cri_pod_test.cc
  LIBS tapio_containerd_fixture tapio_attrib tapio_proto LABEL image)
