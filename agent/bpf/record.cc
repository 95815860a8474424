#include "agent/bpf/record.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "agent/bpf/abi_layout.h"

namespace tapio::bpf {

std::string_view RecordTypeName(uint16_t type) {
  switch (type) {
    case TAPIO_REC_RSS_CHANGE:
      return "rss_change";
    case TAPIO_REC_OOM_KILL:
      return "oom_kill";
    case TAPIO_REC_PROC_EXEC:
      return "proc_exec";
    case TAPIO_REC_PROC_FORK:
      return "proc_fork";
    case TAPIO_REC_PROC_EXIT:
      return "proc_exit";
    case TAPIO_REC_RECLAIM:
      return "reclaim";
    case TAPIO_REC_OOM_CONTEXT:
      return "oom_context";
    case TAPIO_REC_TASK_RSS:
      return "task_rss";
    default:
      return "unknown";
  }
}

std::string_view CommView(const char (&comm)[TAPIO_COMM_LEN]) {
  const void* nul = std::memchr(comm, '\0', TAPIO_COMM_LEN);
  size_t len = nul ? static_cast<const char*>(nul) - comm : TAPIO_COMM_LEN;
  return std::string_view(comm, len);
}

absl::StatusOr<RecordView> RecordView::Decode(const void* data, size_t size) {
  if (IsWellFormed(data, size)) return OfWellFormed(data);
  // Refused: say why.
  if (data == nullptr) return absl::InvalidArgumentError("record is null");
  if (size < sizeof(tapio_header)) {
    return absl::InvalidArgumentError(
        absl::StrCat("record size ", size, " < header ", sizeof(tapio_header)));
  }
  if (reinterpret_cast<uintptr_t>(data) % alignof(uint64_t) != 0) {
    return absl::InvalidArgumentError("record is not 8-byte aligned");
  }
  const auto* h = static_cast<const tapio_header*>(data);
  if (h->version != TAPIO_ABI_VERSION) {
    return absl::InvalidArgumentError(
        absl::StrCat("record version ", h->version, ", want ", TAPIO_ABI_VERSION));
  }
  size_t want = RecordSize(h->type);
  if (want == 0)
    return absl::InvalidArgumentError(absl::StrCat("record type ", h->type, " unknown"));
  if (size != want) {
    return absl::InvalidArgumentError(absl::StrCat("record size ", size, " != ", want, " for ",
                                                   std::string(RecordTypeName(h->type))));
  }
  return absl::InternalError("record refused by IsWellFormed for no known reason");
}

}  // namespace tapio::bpf
