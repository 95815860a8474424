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

// sizeof the struct of `type`; 0 for unknown types.
size_t RecordSize(uint16_t type);
std::string_view RecordTypeName(uint16_t type);  // "oom_kill", ... or "unknown"

// The comm field as a string_view (NUL-terminated within 16 bytes, or all 16).
std::string_view CommView(const char (&comm)[TAPIO_COMM_LEN]);

class RecordView {
 public:
  // InvalidArgument naming the problem: "record size 12 < header 48", "record version 2, want 1",
  // "record type 42 unknown", "record size 90 != 96 for task_rss".
  static absl::StatusOr<RecordView> Decode(const void* data, size_t size);

  tapio_record_type type() const { return static_cast<tapio_record_type>(header_->type); }
  const tapio_header& header() const { return *header_; }
  // Typed accessors: nullptr unless the record is of that type.
  const tapio_rss_record* rss() const;  // RSS_CHANGE or TASK_RSS
  const tapio_oom_record* oom_kill() const;
  const tapio_proc_record* proc() const;  // PROC_EXEC / _FORK / _EXIT
  const tapio_reclaim_record* reclaim() const;
  const tapio_oom_context_record* oom_context() const;

 private:
  explicit RecordView(const tapio_header* h) : header_(h) {}
  const tapio_header* header_;
};

}  // namespace tapio::bpf

#endif  // TAPIO_AGENT_BPF_RECORD_H_
