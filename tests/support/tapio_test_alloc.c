/* tapio-test-alloc: a memory workload for Tapio's kernel and e2e tests.
 *
 * Plain C, libc only, so that it can also be linked with -static and packed into a container image.
 * Allocates anonymous memory (or writes page cache to a file) in steps, touching every page, then
 * holds. Prints "step <mib>" after each step and "ready" once the target is reached, each line
 * flushed, so tests can synchronise on its stdout.
 *
 *   --mib=N        target in MiB; 0 = keep allocating until killed (OOM tests). Default 64.
 *   --step-mib=S   allocation step in MiB. Default 1.
 *   --rate=R       steps per second; 0 = as fast as possible. Default 0.
 *   --hold-s=T     seconds to hold after the target, then exit 0; -1 = hold until killed. Default
 * -1.
 *   --file=PATH    write the data to PATH (page cache) instead of anonymous memory; the file is
 *                  unlinked at start so it disappears with the process.
 *   --churn        after the target, keep re-touching the memory (keeps reclaim busy). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static int parse_long(const char* arg, const char* name, long* out) {
  size_t n = strlen(name);
  if (strncmp(arg, name, n) != 0 || arg[n] != '=') return 0;
  char* end = NULL;
  errno = 0;
  long v = strtol(arg + n + 1, &end, 10);
  if (errno != 0 || end == arg + n + 1 || *end != '\0') {
    fprintf(stderr, "tapio-test-alloc: bad value for %s: '%s'\n", name, arg + n + 1);
    exit(2);
  }
  *out = v;
  return 1;
}

static void sleep_ns(long ns) {
  struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

int main(int argc, char** argv) {
  long mib = 64, step_mib = 1, rate = 0, hold_s = -1;
  const char* file = NULL;
  int churn = 0;
  for (int i = 1; i < argc; ++i) {
    if (parse_long(argv[i], "--mib", &mib) || parse_long(argv[i], "--step-mib", &step_mib) ||
        parse_long(argv[i], "--rate", &rate) || parse_long(argv[i], "--hold-s", &hold_s)) {
      continue;
    }
    if (strncmp(argv[i], "--file=", 7) == 0) {
      file = argv[i] + 7;
    } else if (strcmp(argv[i], "--churn") == 0) {
      churn = 1;
    } else {
      fprintf(stderr, "tapio-test-alloc: unknown flag '%s'\n", argv[i]);
      return 2;
    }
  }
  if (mib < 0 || step_mib <= 0 || rate < 0) {
    fprintf(stderr, "tapio-test-alloc: --mib >= 0, --step-mib > 0, --rate >= 0 required\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  const size_t step_bytes = (size_t)step_mib << 20;
  const long page = sysconf(_SC_PAGESIZE);
  int fd = -1;
  char* chunk = NULL;
  if (file != NULL) {
    fd = open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      perror("tapio-test-alloc: open --file");
      return 1;
    }
    unlink(file);
    chunk = malloc(step_bytes);
    if (chunk == NULL) return 1;
    memset(chunk, 0x5a, step_bytes);
  }
  char** blocks = NULL;
  size_t nblocks = 0, cap = 0;
  long done_mib = 0;
  while (mib == 0 || done_mib < mib) {
    if (fd >= 0) {
      size_t off = 0;
      while (off < step_bytes) {
        ssize_t w = write(fd, chunk + off, step_bytes - off);
        if (w < 0) {
          perror("tapio-test-alloc: write");
          return 1;
        }
        off += (size_t)w;
      }
    } else {
      char* p = mmap(NULL, step_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) {
        perror("tapio-test-alloc: mmap");
        return 1;
      }
      for (size_t off = 0; off < step_bytes; off += (size_t)page) p[off] = (char)(off | 1);
      if (nblocks == cap) {
        cap = cap ? cap * 2 : 64;
        blocks = realloc(blocks, cap * sizeof(*blocks));
        if (blocks == NULL) return 1;
      }
      blocks[nblocks++] = p;
    }
    done_mib += step_mib;
    printf("step %ld\n", done_mib);
    if (rate > 0) sleep_ns(1000000000L / rate);
  }
  printf("ready\n");
  time_t start = time(NULL);
  while (hold_s < 0 || time(NULL) - start < hold_s) {
    if (churn) {
      for (size_t b = 0; b < nblocks; ++b) {
        for (size_t off = 0; off < step_bytes; off += (size_t)page) blocks[b][off]++;
      }
      if (fd >= 0) {
        char buf[4096];
        if (lseek(fd, 0, SEEK_SET) == 0) {
          while (read(fd, buf, sizeof(buf)) > 0) {
          }
        }
      }
      sleep_ns(10000000L);
    } else {
      sleep_ns(100000000L);
    }
  }
  return 0;
}
