// Decoding of raw BPF records (bpf/tapio_abi.h): validation and typed views, no copies.
//
// A record is accepted only when it is at least a header long, carries TAPIO_ABI_VERSION, has a
// known type, and its size equals that type's struct size exactly. Views point into the caller's
// buffer (ring buffer memory during a Poll callback): valid only as long as that buffer is.
// The buffer must be 8-byte aligned (ring buffer records are; the loader copies perf buffer
// samples into aligned storage first). Pure functions, thread-safe.
#ifndef TAPIO_AGENT_BPF_RECORD_H_
#define TAPIO_AGENT_BPF_RECORD_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "bpf/tapio_abi.h"

namespace tapio::bpf {

// One raw record as the kernel wrote it: valid only while its buffer is (see RingReader).
struct RawRecord {
  const void* data;
  uint32_t size;
};

// Records handed over together (RingReader, MemoryTracker::PollBatches), in order; valid only
// during the callback that receives them.
struct RecordBatch {
  const RawRecord* records = nullptr;
  size_t count = 0;
  // The bytes the reader reads next (the ring after these records; nullptr when none): a
  // consumer that works on the batch a while asks for their cache lines meanwhile, a few per
  // record (Pipeline::HandleRecords), so that the reader's next pass finds them there instead of
  // waiting for each in turn.
  const char* next = nullptr;
  size_t next_bytes = 0;
};

// sizeof the struct of `type`; 0 for unknown types.
inline size_t RecordSize(uint16_t type) {
  switch (type) {
    case TAPIO_REC_RSS_CHANGE:
    case TAPIO_REC_TASK_RSS:
      return sizeof(tapio_rss_record);
    case TAPIO_REC_OOM_KILL:
      return sizeof(tapio_oom_record);
    case TAPIO_REC_PROC_EXEC:
    case TAPIO_REC_PROC_FORK:
    case TAPIO_REC_PROC_EXIT:
      return sizeof(tapio_proc_record);
    case TAPIO_REC_RECLAIM:
      return sizeof(tapio_reclaim_record);
    case TAPIO_REC_OOM_CONTEXT:
      return sizeof(tapio_oom_context_record);
    default:
      return 0;
  }
}

// Whether RecordView::Decode accepts the record (below), without saying why not: inline, for the
// ingest path, which calls Decode only for the message of a record this refuses.
inline bool IsWellFormed(const void* data, size_t size) {
  if (data == nullptr || size < sizeof(tapio_header)) return false;
  if (reinterpret_cast<uintptr_t>(data) % alignof(uint64_t) != 0) return false;
  const auto* h = static_cast<const tapio_header*>(data);
  return h->version == TAPIO_ABI_VERSION && RecordSize(h->type) == size;  // 0: unknown type
}
std::string_view RecordTypeName(uint16_t type);  // "oom_kill", ... or "unknown"

// The comm field as a string_view (NUL-terminated within 16 bytes, or all 16).
std::string_view CommView(const char (&comm)[TAPIO_COMM_LEN]);

class RecordView {
 public:
  // InvalidArgument naming the problem: "record size 12 < header 48", "record version 2, want 1",
  // "record type 42 unknown", "record size 90 != 96 for task_rss".
  static absl::StatusOr<RecordView> Decode(const void* data, size_t size);
  // A record IsWellFormed accepted.
  static RecordView OfWellFormed(const void* data) {
    return RecordView(static_cast<const tapio_header*>(data));
  }

  tapio_record_type type() const { return static_cast<tapio_record_type>(header_->type); }
  const tapio_header& header() const { return *header_; }
  // Typed accessors: nullptr unless the record is of that type.
  const tapio_rss_record* rss() const {  // RSS_CHANGE or TASK_RSS
    return (type() == TAPIO_REC_RSS_CHANGE || type() == TAPIO_REC_TASK_RSS) ? As<tapio_rss_record>()
                                                                            : nullptr;
  }
  const tapio_oom_record* oom_kill() const {
    return type() == TAPIO_REC_OOM_KILL ? As<tapio_oom_record>() : nullptr;
  }
  const tapio_proc_record* proc() const {  // PROC_EXEC / _FORK / _EXIT
    return (type() == TAPIO_REC_PROC_EXEC || type() == TAPIO_REC_PROC_FORK ||
            type() == TAPIO_REC_PROC_EXIT)
               ? As<tapio_proc_record>()
               : nullptr;
  }
  const tapio_reclaim_record* reclaim() const {
    return type() == TAPIO_REC_RECLAIM ? As<tapio_reclaim_record>() : nullptr;
  }
  const tapio_oom_context_record* oom_context() const {
    return type() == TAPIO_REC_OOM_CONTEXT ? As<tapio_oom_context_record>() : nullptr;
  }

 private:
  explicit RecordView(const tapio_header* h) : header_(h) {}
  template <typename T>
  const T* As() const {
    return reinterpret_cast<const T*>(header_);
  }
  const tapio_header* header_;
};

}  // namespace tapio::bpf

#endif  // TAPIO_AGENT_BPF_RECORD_H_
