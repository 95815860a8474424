// RingReader on the real kernel, as root (LABEL kernel): a BPF producer
// (ring_test_producer.bpf.c) writes numbered records of every size into a 16 KiB ring buffer, so
// that the reader wraps around it many times; discarded records must be skipped, the rest
// delivered once, in order, intact, in batches of at most kMaxBatch.
#include "agent/bpf/ring_reader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cstring>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "bpf/ring_test_producer.skel.h"
#include "gtest/gtest.h"

namespace tapio::bpf {
namespace {

struct Rec {
  uint32_t seq;
  uint32_t len;
  uint8_t fill[120];
};

uint32_t LenOf(uint32_t seq) { return 8 + (seq * 13) % 120; }  // as the producer

class RingReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    skel_ = ring_test_producer_bpf__open_and_load();
    ASSERT_NE(skel_, nullptr) << "producer load failed";
    absl::StatusOr<std::unique_ptr<RingReader>> r =
        RingReader::Open(bpf_map__fd(skel_->maps.test_rb));
    ASSERT_TRUE(r.ok()) << r.status();
    reader_ = std::move(*r);
  }
  void TearDown() override {
    reader_.reset();
    if (skel_) ring_test_producer_bpf__destroy(skel_);
  }
  // Runs the producer once; returns how many records it wrote (discarded ones not counted).
  uint64_t Produce(uint32_t count, uint32_t first_seq, uint32_t discard_every) {
    const uint64_t before = skel_->bss->written;
    struct {
      uint32_t count, first_seq, discard_every;
    } args = {count, first_seq, discard_every};
    LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &args, .ctx_size_in = sizeof(args));
    EXPECT_EQ(bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.produce), &opts), 0);
    EXPECT_GE(static_cast<int>(opts.retval), 0) << "bpf_loop failed";
    return skel_->bss->written - before;
  }

  ring_test_producer_bpf* skel_ = nullptr;
  std::unique_ptr<RingReader> reader_;
};

TEST_F(RingReaderTest, DeliversEveryRecordOnceInOrderAcrossManyWraps) {
  EXPECT_EQ(reader_->capacity_bytes(), 16u << 10);
  uint32_t next_seq = 0;  // the producer's
  uint32_t want_seq = 0;  // the next one the reader must deliver
  uint64_t delivered = 0, batches = 0, with_next = 0;
  size_t largest_batch = 0;
  for (int round = 0; round < 200; ++round) {
    // 100 records of ~76 bytes: about half the ring per round, 15 ring lengths in all.
    const uint32_t count = 100;
    Produce(count, next_seq, /*discard_every=*/7);
    next_seq += count;
    const int64_t n = reader_->Consume([&](const RecordBatch& batch) {
      ++batches;
      largest_batch = std::max(largest_batch, batch.count);
      if (batch.next != nullptr) {
        ++with_next;
        // The next batch starts there: its first record's header, then its data.
        EXPECT_GT(batch.next_bytes, 0u);
        EXPECT_LE(batch.next_bytes, RingReader::kNextBytes);
      }
      for (size_t i = 0; i < batch.count; ++i) {
        while (want_seq % 7 == 0) ++want_seq;  // discarded: never delivered
        const RawRecord& r = batch.records[i];
        ASSERT_EQ(reinterpret_cast<uintptr_t>(r.data) % 8, 0u);
        Rec rec = {};
        std::memcpy(&rec, r.data, std::min<size_t>(r.size, sizeof(rec)));
        ASSERT_EQ(rec.seq, want_seq) << "round " << round;
        ASSERT_EQ(r.size, LenOf(want_seq));
        ASSERT_EQ(rec.len, r.size);
        for (uint32_t k = 0; k + 8 < r.size; ++k) {
          ASSERT_EQ(rec.fill[k], static_cast<uint8_t>(want_seq + k)) << "seq " << want_seq;
        }
        ++want_seq;
        ++delivered;
      }
    });
    ASSERT_GT(n, 0);
    EXPECT_EQ(reader_->PendingBytes(), 0u) << "round " << round;
  }
  while (want_seq % 7 == 0) ++want_seq;
  EXPECT_EQ(want_seq, next_seq + (next_seq % 7 == 0 ? 1 : 0));
  EXPECT_EQ(delivered, skel_->bss->written);
  EXPECT_GT(skel_->bss->discarded, 0u);
  EXPECT_EQ(skel_->bss->full, 0u);
  EXPECT_LE(largest_batch, RingReader::kMaxBatch);
  EXPECT_EQ(largest_batch, RingReader::kMaxBatch);  // 86 records per round: one full batch each
  EXPECT_GT(with_next, 0u);
}

TEST_F(RingReaderTest, AFullRingLosesTheOverflowNotWhatItHolds) {
  // 1,000 records do not fit in 16 KiB: the producer stops at the first that does not.
  Produce(1000, 0, /*discard_every=*/0);
  ASSERT_GT(skel_->bss->full, 0u);
  const uint64_t written = skel_->bss->written;
  uint32_t want_seq = 0;
  const int64_t n = reader_->Consume([&](const RecordBatch& batch) {
    for (size_t i = 0; i < batch.count; ++i) {
      EXPECT_EQ(static_cast<const Rec*>(batch.records[i].data)->seq, want_seq++);
    }
  });
  EXPECT_EQ(static_cast<uint64_t>(n), written);
  // The space is the producer's again: the next fill starts where the last one stopped.
  EXPECT_EQ(Produce(10, 5000, 0), 10u);
  want_seq = 5000;
  EXPECT_EQ(reader_->Consume([&](const RecordBatch& batch) {
    for (size_t i = 0; i < batch.count; ++i) {
      EXPECT_EQ(static_cast<const Rec*>(batch.records[i].data)->seq, want_seq++);
    }
  }),
            10);
}

TEST_F(RingReaderTest, PollWaitsForTheKernelsWakeupAndTimesOutWhenNothingComes) {
  auto nothing = [](const RecordBatch&) {};
  const absl::Time start = absl::Now();
  absl::StatusOr<int64_t> n = reader_->Poll(100, nothing);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(90));

  // A record produced while the reader waits wakes it long before its 5 s timeout.
  std::thread producer([&] {
    absl::SleepFor(absl::Milliseconds(100));
    Produce(3, 0, 0);
  });
  const absl::Time wait_start = absl::Now();
  int64_t got = 0;
  while (got < 3 && absl::Now() - wait_start < absl::Seconds(5)) {
    absl::StatusOr<int64_t> m = reader_->Poll(5000, [&](const RecordBatch& b) { got += b.count; });
    ASSERT_TRUE(m.ok()) << m.status();
  }
  producer.join();
  EXPECT_EQ(got, 3);
  EXPECT_LT(absl::Now() - wait_start, absl::Seconds(2));
}

TEST(RingReaderOpenTest, RefusesAMapThatIsNotARingBuffer) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  const int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "not_a_ring", 4, 8, 1, nullptr);
  ASSERT_GE(fd, 0);
  absl::StatusOr<std::unique_ptr<RingReader>> r = RingReader::Open(fd);
  close(fd);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("not a ring buffer"), std::string::npos) << r.status();
  EXPECT_FALSE(RingReader::Open(-1).ok());
}

}  // namespace
}  // namespace tapio::bpf
