// gmock CriClient for registry tests.
#ifndef TAPIO_TESTS_ATTRIB_MOCK_CRI_CLIENT_H_
#define TAPIO_TESTS_ATTRIB_MOCK_CRI_CLIENT_H_

#include <vector>

#include "agent/attrib/cri_client.h"
#include "gmock/gmock.h"

namespace tapio::attrib {

class MockCriClient : public CriClient {
 public:
  MOCK_METHOD(absl::StatusOr<CriVersion>, Version, (), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<CriContainer>>, ListContainers, (), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<CriPodSandbox>>, ListPodSandbox, (), (override));
  MOCK_METHOD(absl::StatusOr<CriContainerStatus>, ContainerStatus,
              (absl::string_view container_id, bool verbose), (override));
};

}  // namespace tapio::attrib

#endif  // TAPIO_TESTS_ATTRIB_MOCK_CRI_CLIENT_H_
