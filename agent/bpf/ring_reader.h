// RingReader: the consumer side of a BPF ring buffer map (BPF_MAP_TYPE_RINGBUF), in batches.
//
// libbpf's ring_buffer hands records over one at a time and publishes the consumer position
// after each one. This reader maps the same pages (the kernel's ABI, kernel/bpf/ringbuf.c: the
// consumer page read-write at offset 0; the producer page and the data area, mapped twice in a
// row so that a record never wraps, read-only from offset page_size) and hands out up to
// kMaxBatch committed records at a time. They stay valid until the callback returns, so the
// caller can look ahead (Pipeline::HandleRecords prefetches the process-table slots of the next
// records, and the ring lines of the next batch: RecordBatch::next); the consumer position is
// published once per batch.
//
// One consumer thread per map. A record whose header still carries the busy bit (reserved, not
// yet submitted) stops the batch there: the records after it wait for the next call, in order.
// Discarded records are skipped. Each Consume takes only what was committed when it started, so
// a producer that never pauses cannot keep the caller inside.
#ifndef TAPIO_AGENT_BPF_RING_READER_H_
#define TAPIO_AGENT_BPF_RING_READER_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "agent/bpf/record.h"

namespace tapio::bpf {

class RingReader {
 public:
  static constexpr size_t kMaxBatch = 64;
  // What RecordBatch::next covers at most: the next batch, about.
  static constexpr size_t kNextBytes = 8192;
  using BatchFn = absl::FunctionRef<void(const RecordBatch& batch)>;

  // `map_fd` must be a BPF_MAP_TYPE_RINGBUF map; it is not owned and must outlive the reader.
  static absl::StatusOr<std::unique_ptr<RingReader>> Open(int map_fd);
  ~RingReader();
  RingReader(const RingReader&) = delete;
  RingReader& operator=(const RingReader&) = delete;

  // Delivers the records committed when called, in batches; returns how many it delivered.
  int64_t Consume(BatchFn on_batch);
  // Consume; when it found nothing, waits up to timeout_ms (0: not at all, < 0: forever) for the
  // kernel's wake-up on the map fd and consumes again. Interrupted waits (EINTR) return 0.
  absl::StatusOr<int64_t> Poll(int timeout_ms, BatchFn on_batch);
  // Bytes between the consumer and producer positions (committed or not).
  uint64_t PendingBytes() const;
  size_t capacity_bytes() const { return static_cast<size_t>(mask_ + 1); }

 private:
  RingReader() = default;

  int epoll_fd_ = -1;
  void* consumer_page_ = nullptr;  // unsigned long consumer_pos at offset 0
  size_t consumer_len_ = 0;
  void* producer_area_ = nullptr;  // unsigned long producer_pos at offset 0, data at page_size
  size_t producer_len_ = 0;
  const uint8_t* data_ = nullptr;
  uint64_t mask_ = 0;
};

}  // namespace tapio::bpf

#endif  // TAPIO_AGENT_BPF_RING_READER_H_
