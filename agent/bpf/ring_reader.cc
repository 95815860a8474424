#include "agent/bpf/ring_reader.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "agent/core/file_util.h"
#include "agent/core/prefetch.h"

namespace tapio::bpf {
namespace {

constexpr uint32_t kFlagBits = BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT;
// How far ahead of the record being read its lines are asked for: the records of a batch.
constexpr uint64_t kPrefetchBytes = 1024;

uint64_t LoadAcquire(const void* p) {
  return __atomic_load_n(static_cast<const volatile uint64_t*>(p), __ATOMIC_ACQUIRE);
}

}  // namespace

absl::StatusOr<std::unique_ptr<RingReader>> RingReader::Open(int map_fd) {
  bpf_map_info info = {};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(map_fd, &info, &len) != 0) {
    return ErrnoToStatus(errno, "ring reader: map info");
  }
  if (info.type != BPF_MAP_TYPE_RINGBUF) {
    return absl::InvalidArgumentError(
        absl::StrCat("ring reader: map type ", info.type, " is not a ring buffer"));
  }
  const uint64_t size = info.max_entries;  // the kernel made it a power of two of pages
  const long page = sysconf(_SC_PAGESIZE);
  if (size == 0 || (size & (size - 1)) != 0 || size % static_cast<uint64_t>(page) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("ring reader: ring size ", size));
  }
  std::unique_ptr<RingReader> r(new RingReader());
  r->mask_ = size - 1;
  r->consumer_len_ = static_cast<size_t>(page);
  void* consumer = mmap(nullptr, r->consumer_len_, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
  if (consumer == MAP_FAILED) return ErrnoToStatus(errno, "ring reader: mmap consumer page");
  r->consumer_page_ = consumer;
  r->producer_len_ = static_cast<size_t>(page) + 2 * size;
  void* producer = mmap(nullptr, r->producer_len_, PROT_READ, MAP_SHARED, map_fd, page);
  if (producer == MAP_FAILED) return ErrnoToStatus(errno, "ring reader: mmap data");
  r->producer_area_ = producer;
  r->data_ = static_cast<const uint8_t*>(producer) + page;
  r->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (r->epoll_fd_ < 0) return ErrnoToStatus(errno, "ring reader: epoll_create1");
  epoll_event ev = {};
  ev.events = EPOLLIN;
  if (epoll_ctl(r->epoll_fd_, EPOLL_CTL_ADD, map_fd, &ev) != 0) {
    return ErrnoToStatus(errno, "ring reader: epoll_ctl");
  }
  return r;
}

RingReader::~RingReader() {
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (producer_area_ != nullptr) munmap(producer_area_, producer_len_);
  if (consumer_page_ != nullptr) munmap(consumer_page_, consumer_len_);
}

uint64_t RingReader::PendingBytes() const {
  return LoadAcquire(producer_area_) - LoadAcquire(consumer_page_);
}

int64_t RingReader::Consume(BatchFn on_batch) {
  auto* consumer_pos = static_cast<volatile uint64_t*>(consumer_page_);
  uint64_t pos = *consumer_pos;  // this thread is its only writer
  // Acquire: the headers of the records below this position were written before it was.
  const uint64_t end = LoadAcquire(producer_area_);
  RawRecord batch[kMaxBatch];
  int64_t delivered = 0;
  uint64_t ahead = pos & ~uint64_t{63};  // lines below this were asked for
  bool blocked = false;
  while (pos < end && !blocked) {
    size_t n = 0;
    while (pos < end && n < kMaxBatch) {
      const uint8_t* hdr = data_ + (pos & mask_);
      // Headers are read one after the other, each at the position the one before gave: ask for
      // the lines kPrefetchBytes ahead meanwhile, or every line is a miss waited for in turn.
      for (; ahead < pos + kPrefetchBytes; ahead += 64) PrefetchForRead(data_ + (ahead & mask_));
      // Acquire pairs with the kernel's commit: the record's bytes are complete once busy is off.
      const uint32_t word =
          __atomic_load_n(reinterpret_cast<const uint32_t*>(hdr), __ATOMIC_ACQUIRE);
      if (word & BPF_RINGBUF_BUSY_BIT) {
        blocked = true;
        break;
      }
      const uint32_t len = word & ~kFlagBits;
      if (!(word & BPF_RINGBUF_DISCARD_BIT)) batch[n++] = RawRecord{hdr + BPF_RINGBUF_HDR_SZ, len};
      pos += (static_cast<uint64_t>(len) + BPF_RINGBUF_HDR_SZ + 7) & ~uint64_t{7};
    }
    if (n > 0) {
      RecordBatch b;
      b.records = batch;
      b.count = n;
      if (!blocked && pos < end) {
        b.next = reinterpret_cast<const char*>(data_ + (pos & mask_));  // mapped twice: no wrap
        b.next_bytes = static_cast<size_t>(std::min<uint64_t>(end - pos, kNextBytes));
      }
      on_batch(b);
      delivered += static_cast<int64_t>(n);
    }
    // Release: the kernel may reuse the space only after the callback is done with it.
    __atomic_store_n(consumer_pos, pos, __ATOMIC_RELEASE);
  }
  return delivered;
}

absl::StatusOr<int64_t> RingReader::Poll(int timeout_ms, BatchFn on_batch) {
  const int64_t n = Consume(on_batch);
  if (n > 0 || timeout_ms == 0) return n;
  epoll_event ev;
  if (epoll_wait(epoll_fd_, &ev, 1, timeout_ms) < 0) {
    if (errno == EINTR) return 0;
    return ErrnoToStatus(errno, "ring reader: epoll_wait");
  }
  return Consume(on_batch);
}

}  // namespace tapio::bpf
